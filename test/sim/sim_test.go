package sim

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkReport asserts the acceptance figures of a run.
func checkReport(t *testing.T, r report, keys int) {
	t.Helper()
	assert.Equal(t, keys, r.StoresOK, "every store succeeds")
	assert.GreaterOrEqual(t, r.Healthy1.rate(), 0.999, "gets on a healthy swarm")
	assert.GreaterOrEqual(t, r.AfterKill.rate(), 0.99, "gets after killing nodes")
	assert.GreaterOrEqual(t, r.Top1, 0.8, "nearest-node top-1 accuracy")
	assert.GreaterOrEqual(t, r.Jaccard, 0.9, "nearest-node Jaccard index")
	for i, c := range r.ReplicaCounts {
		assert.Equal(t, r.Replicas, c, "replica count of store %d", i)
	}
}

// TestSimulation is the CI-sized simulation (ciScenario: 1,000 nodes, 200 under -race).
func TestSimulation(t *testing.T) {
	seed := simSeed(t)
	r := runScenario(t, seed, ciScenario)
	t.Log("\n" + r.String())
	checkReport(t, r, ciScenario.Keys)
}

// TestLong runs 10,000 and 100,000 nodes (HIVEMIND_LONG=1; HIVEMIND_SIM_SIZES="10000,100000"
// chooses the sizes).
func TestLong(t *testing.T) {
	if os.Getenv("HIVEMIND_LONG") != "1" {
		t.Skip("long simulations run with HIVEMIND_LONG=1")
	}
	sizes := []int{10_000, 100_000}
	if s := os.Getenv("HIVEMIND_SIM_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(t, err, "HIVEMIND_SIM_SIZES")
			sizes = append(sizes, n)
		}
	}
	seed := simSeed(t)
	for _, size := range sizes {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			sc := scenario{
				Size: size, Keys: 1000, Gets: 2000, Queries: 200, ReplicaKeys: 10, KillFraction: 0.1,
				JoinConcurrency: 16, Concurrency: 32,
				Latency: dhtsim.Latency{Base: 10 * time.Millisecond, Jitter: 20 * time.Millisecond},
				Node:    dht.Config{RefreshInterval: -1},
			}
			r := runScenario(t, seed, sc)
			t.Log("\n" + r.String())
			checkReport(t, r, sc.Keys)
		})
	}
}
