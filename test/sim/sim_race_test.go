//go:build race

package sim

import (
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
)

// ciScenario is the CI size under the race detector (about 10× slower and hungrier): 200 nodes.
// The full 1,000 nodes run in the normal build (sim_norace_test.go).
var ciScenario = scenario{
	Size: 200, Keys: 200, Gets: 1000, Queries: 100, ReplicaKeys: 10, KillFraction: 0.1,
	JoinConcurrency: 8, Concurrency: 16,
	Latency: dhtsim.Latency{Base: 10 * time.Millisecond, Jitter: 20 * time.Millisecond},
	Node:    dht.Config{RefreshInterval: -1},
}
