package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// Binaries built once by TestMain (without -race: a worker is a separate program, and 16 race-built
// libp2p workers would cost ten times the CPU and memory; the parent side, in this test process,
// runs with -race when the tests do).
var (
	faultWorkerBin string // test/chaos/faultworker
	supervisorBin  string // cmd/supervisor
)

// defaultSeed is the seed of every run unless HIVEMIND_CHAOS_SEED says otherwise.
const defaultSeed = 20250305

// envSeed overrides the seed; envLong turns on the long forms.
const (
	envSeed = "HIVEMIND_CHAOS_SEED"
	envLong = "HIVEMIND_LONG"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hivemind-chaos-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	faultWorkerBin = filepath.Join(dir, "faultworker")
	supervisorBin = filepath.Join(dir, "supervisor")
	if err := buildAll(map[string]string{
		faultWorkerBin: "github.com/hivemind-go/hivemind/test/chaos/faultworker",
		supervisorBin:  "github.com/hivemind-go/hivemind/cmd/supervisor",
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := 0
	func() {
		defer func() { _ = os.RemoveAll(dir) }()
		code = runVerified(m)
	}()
	os.Exit(code)
}

// runVerified runs the tests and then goleak's check, like goleak.VerifyTestMain without its
// os.Exit (the binaries' directory must be removed first).
func runVerified(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(leakOptions()...); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
		return 1
	}
	return 0
}

// leakOptions ignore the process-wide goroutines libp2p leaves once used (the supervisor scenario
// runs an in-process client node).
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/tcp.(*tcpListener).Accept"),
	}
}

// buildAll runs `go build -o out pkg` for every entry, concurrently.
func buildAll(targets map[string]string) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(targets))
	for out, pkg := range targets {
		wg.Go(func() {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			if b, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// seed returns the run's seed (printed; HIVEMIND_CHAOS_SEED overrides it).
func seed(t testing.TB) uint64 {
	t.Helper()
	s := uint64(defaultSeed)
	if v := os.Getenv(envSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s must be an unsigned integer: %v", envSeed, err)
		}
		s = n
	}
	t.Logf("seed %d (set %s to reproduce or vary)", s, envSeed)
	return s
}

// long reports whether the long forms run (HIVEMIND_LONG=1).
func long() bool { return os.Getenv(envLong) == "1" }
