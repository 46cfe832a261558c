//go:build !race

package sim

import (
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
)

// ciScenario is the CI size without the race detector: 1,000 nodes.
var ciScenario = scenario{
	Size: 1000, Keys: 500, Gets: 2000, Queries: 200, ReplicaKeys: 20, KillFraction: 0.1,
	JoinConcurrency: 8, Concurrency: 16,
	Latency: dhtsim.Latency{Base: 10 * time.Millisecond, Jitter: 20 * time.Millisecond},
	Node:    dht.Config{RefreshInterval: -1},
}
