package albert

import (
	"os"
	"testing"

	"github.com/hivemind-go/hivemind/worker"
)

// TestMain doubles as the DHT worker of the end-to-end test (go-plugin's helper-process pattern): a
// node's worker is this test binary, re-executed with the handshake cookie, and worker.Main serves
// it without ever returning. Without the cookie it returns at once and the tests run.
func TestMain(m *testing.M) {
	worker.Main()
	os.Exit(m.Run())
}
