package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
	"github.com/hivemind-go/hivemind/test/chaos/report"
)

// TestSimPartitionHeals is TestPartitionHeals on a dhtsim network of real dht.Nodes in virtual time
// (calls across the partition are refused at once, as in the real swarm): 64 nodes split in two, records stored on each side,
// healed; every record must be readable from the other side within the refresh period plus
// healSlack (virtual time has no machine noise, so the claim itself is asserted; the time is
// printed). The other nodes bootstrap through the cluster's first nodes; the routing-table
// refresh re-contacts those initial peers once they are missing from the table (dht/refresh.go).
func TestSimPartitionHeals(t *testing.T) {
	s := seed(t)
	synctest.Test(t, func(t *testing.T) {
		const (
			size    = 64
			refresh = 60 * time.Second // dht's default
			keys    = 8
			// healSlack covers what follows the first refresh tick after the heal: the pings of
			// the initial peers and a lookup, each RPC bounded by the 1 s WaitTimeout.
			healSlack = 10 * time.Second
		)
		net, err := dhtsim.NewNetwork(dhtsim.Config{
			Seed: int64(s), Latency: dhtsim.Latency{Base: 5 * time.Millisecond, Jitter: 5 * time.Millisecond},
			Unreachable: dhtsim.Refuse, // like the real swarm's partition: calls across fail at once
		})
		if err != nil {
			t.Fatal(err)
		}
		cl, err := dhtsim.NewCluster(t.Context(), net, dhtsim.ClusterConfig{
			Size: size, JoinConcurrency: 8,
			Node: dht.Config{RefreshInterval: refresh, WaitTimeout: time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cl.Close() }()
		ctx := t.Context()
		rng := rand.New(rand.NewPCG(s, 5))
		order := rng.Perm(size)
		a, b := order[:size/2], order[size/2:]
		ids := func(side []int) []dht.PeerID {
			var out []dht.PeerID
			for _, i := range side {
				out = append(out, net.PeerID(i))
			}
			return out
		}
		net.Partition(ids(a), ids(b))
		tl := newTally()
		heap := report.StartHeapSampler()
		defer heap.Stop()
		store := func(side []int, prefix string) []crossCheck {
			var out []crossCheck
			for k := range keys {
				key := dht.MustKey(fmt.Sprintf("%s-%d", prefix, k))
				n := cl.Node(side[k%len(side)])
				res, err := n.Store(ctx, dht.StoreItem{Key: key, Value: k, Expiration: dht.SystemClock{}.Now() + 3600})
				tl.note("Store", err, 0, time.Hour)
				if err != nil || !res.Stored {
					t.Fatalf("store %s on its own side: %+v %v", prefix, res, err)
				}
				out = append(out, crossCheck{rec: record{key: key, value: mustPack(k)}})
			}
			return out
		}
		recsA, recsB := store(a, "sim-a"), store(b, "sim-b")
		for i := range recsA {
			recsA[i].slot = b[i%len(b)]
		}
		for i := range recsB {
			recsB[i].slot = a[i%len(a)]
		}
		get := func(c crossCheck) bool {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			start := time.Now()
			got, err := cl.Node(c.slot).Get(cctx, c.rec.key, dht.GetOptions{})
			tl.note("Get", err, time.Since(start), 10*time.Second)
			return err == nil && got != nil && string(got.Value) == string(c.rec.value)
		}
		// While cut off, the other side's records are out of reach (and each side forgets the other).
		for _, c := range recsA[:2] {
			if get(c) {
				t.Errorf("a record stored on one side was read from the other during the partition")
			}
		}
		// The partition lasts two refresh periods, with traffic: every node looks up random IDs, meets
		// the other side's nodes and evicts them, as a busy swarm would.
		for range 2 {
			for i, n := range cl.Nodes() {
				q := []dht.ID{dhtsim.NodeIDFor(int64(s), size+i), dhtsim.NodeIDFor(int64(s)+1, size+i)}
				_, _ = n.FindNearestNodes(ctx, q, 0, false)
			}
			time.Sleep(refresh)
		}
		sizes := func() (lo, hi int) {
			lo = size
			for _, n := range cl.Nodes() {
				st := n.Stats().RoutingTable.NodeIDs
				lo, hi = min(lo, st), max(hi, st)
			}
			return lo, hi
		}
		lo, hi := sizes()
		t.Logf("routing-table sizes during the partition: %d..%d (a side has %d nodes)", lo, hi, size/2)
		heap.Sample()
		// Heal at a seeded point of the refresh cycle: the nodes' ticks are nearly aligned (they
		// joined within moments), and healing right on a tick would hide the wait for the next one.
		time.Sleep(time.Duration(rng.Int64N(int64(refresh))))
		net.Heal()
		healed := time.Now()
		pending := append(slices.Clone(recsA), recsB...)
		for time.Since(healed) < 3*refresh && len(pending) > 0 {
			time.Sleep(time.Second) // virtual time
			pending = slices.DeleteFunc(pending, get)
			heap.Sample()
		}
		took := time.Since(healed)
		peak, _ := heap.Stop()
		c := tl.snapshot()
		row := report.Row{
			Scenario: "sim/partition-heal", Runs: 1, Calls: c.calls, FailedAsExpected: c.typed,
			Hung: c.hung, Unclear: c.untyped, Lost: len(pending), WorstRecovery: took,
			PeakMemory: peak, MemoryKind: "heap",
			Notes: fmt.Sprintf("seed=%d nodes=%d refresh=%v partition=%v (virtual time)", s, size, refresh, 2*refresh),
		}
		recordRow(t, row)
		if row.Hung != 0 || row.Unclear != 0 {
			t.Errorf("hung=%d unclear=%d, both must be 0: %v", row.Hung, row.Unclear, c.examples)
		}
		if len(pending) > 0 {
			t.Errorf("%d of %d cross-side records still unreadable %v (virtual) after the heal, refresh period %v",
				len(pending), 2*keys, took, refresh)
		} else if bound := refresh + healSlack; took > bound {
			// Virtual time: no machine noise, so the claim itself is asserted.
			t.Errorf("the partition healed in %v (virtual), want within the refresh period plus %v (%v)", took, healSlack, bound)
		}
	})
}
