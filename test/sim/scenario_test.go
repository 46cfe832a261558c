package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/stretchr/testify/require"
)

// defaultSeed is used when HIVEMIND_SIM_SEED is not set, so CI runs are reproducible.
const defaultSeed = 20240611

// simSeed returns the seed of this run and prints it.
func simSeed(t testing.TB) int64 {
	t.Helper()
	seed := int64(defaultSeed)
	if s := os.Getenv("HIVEMIND_SIM_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "HIVEMIND_SIM_SEED must be an integer")
		seed = v
	}
	t.Logf("seed %d (set HIVEMIND_SIM_SEED to reproduce or vary)", seed)
	return seed
}

// scenario sizes one simulation run.
type scenario struct {
	Size            int
	Keys            int     // values stored before the gets
	Gets            int     // gets per phase (healthy, after kills)
	Queries         int     // nearest-node queries checked against brute force
	ReplicaKeys     int     // fresh keys whose replicas are counted
	KillFraction    float64 // nodes killed before the second get phase
	JoinConcurrency int
	Concurrency     int // concurrent stores / gets
	Latency         dhtsim.Latency
	// Node is every node's config template. Scenarios disable the routing-table refresh
	// (RefreshInterval -1), as hivemind does by default (refresh_timeout=None): in virtual time a
	// long build would otherwise run a refresh of every node every simulated minute.
	Node dht.Config
}

// lookups summarizes one get phase.
type lookups struct {
	OK, Total int
	RPCs      []int           // RPCs (every kind) sent by the getter during each get
	Finds     []int           // FIND RPCs among them
	Latency   []time.Duration // virtual time of each get
}

func (l lookups) rate() float64 { return float64(l.OK) / float64(max(l.Total, 1)) }

// report is what a run measured.
type report struct {
	Seed                         int64
	Size                         int
	Build, Stores, Healthy, Kill time.Duration // wall time per phase
	Virtual                      time.Duration // virtual time of the whole run
	StoresOK                     int
	Healthy1, AfterKill          lookups
	Top1, Jaccard                float64
	ReplicaCounts                []int
	Replicas                     int
	PeakHeap, PeakRSS, HeapAfter uint64
	NetStats                     dhtsim.Stats
	RoutingMean                  float64 // mean routing-table size
}

func mean(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0
	for _, x := range xs {
		s += x
	}
	return float64(s) / float64(len(xs))
}

func percentile(xs []int, p float64) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (r report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed=%d nodes=%d replicas=%d mean-routing-table=%.1f\n", r.Seed, r.Size, r.Replicas, r.RoutingMean)
	fmt.Fprintf(&b, "  wall: build %v, stores %v, healthy gets %v, gets after kills %v; virtual %v\n",
		r.Build.Round(time.Millisecond), r.Stores.Round(time.Millisecond), r.Healthy.Round(time.Millisecond),
		r.Kill.Round(time.Millisecond), r.Virtual.Round(time.Millisecond))
	for _, p := range []struct {
		name string
		l    lookups
	}{{"healthy", r.Healthy1}, {"after kills", r.AfterKill}} {
		ms := make([]int, len(p.l.Latency))
		for i, d := range p.l.Latency {
			ms[i] = int(d.Milliseconds())
		}
		fmt.Fprintf(&b, "  gets %-11s %d/%d = %.4f; RPCs/lookup mean %.1f p99 %d; FINDs/lookup mean %.1f p99 %d; "+
			"virtual latency mean %.0f ms p99 %d ms\n",
			p.name, p.l.OK, p.l.Total, p.l.rate(), mean(p.l.RPCs), percentile(p.l.RPCs, 0.99),
			mean(p.l.Finds), percentile(p.l.Finds, 0.99), mean(ms), percentile(ms, 0.99))
	}
	fmt.Fprintf(&b, "  stores ok %d; nearest: top-1 %.3f, Jaccard %.3f; replica counts %v\n",
		r.StoresOK, r.Top1, r.Jaccard, compact(r.ReplicaCounts))
	fmt.Fprintf(&b, "  memory: peak live heap %s (%.1f KiB/node), live heap at the end %s, peak RSS of the process %s\n",
		mib(r.PeakHeap), float64(r.PeakHeap)/1024/float64(max(r.Size, 1)), mib(r.HeapAfter), mib(r.PeakRSS))
	t := r.NetStats.Total()
	fmt.Fprintf(&b, "  network: %d calls (%d ping, %d store, %d find), %d failed, %s requests, %s responses",
		t.Calls, r.NetStats.Ping.Calls, r.NetStats.Store.Calls, r.NetStats.Find.Calls, t.Failed,
		mib(t.RequestBytes), mib(t.ResponseBytes))
	return b.String()
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// compact renders replica counts as value×count.
func compact(xs []int) string {
	counts := map[int]int{}
	for _, x := range xs {
		counts[x]++
	}
	keys := make([]int, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d×%d", k, counts[k])
	}
	return strings.Join(parts, " ")
}

// memSampler tracks the largest live heap seen at the phase boundaries.
type memSampler struct{ peakHeap uint64 }

// sample collects garbage and returns the live heap (HeapAlloc after a GC).
func (m *memSampler) sample() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.peakHeap = max(m.peakHeap, ms.HeapAlloc)
	return ms.HeapAlloc
}

// peakRSS reads VmHWM (the process's peak resident set) from /proc; 0 where unavailable.
func peakRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// runScenario runs sc in virtual time and returns what it measured. Failures of the machinery (a
// node that does not start, a Get that errors) fail the test; the caller asserts the figures.
func runScenario(t *testing.T, seed int64, sc scenario) report {
	t.Helper()
	r := report{Seed: seed, Size: sc.Size}
	var mem memSampler
	mem.sample()
	synctest.Test(t, func(t *testing.T) {
		vstart := time.Now()
		ctx := t.Context()
		rng := rand.New(rand.NewPCG(uint64(seed), 0x5111))
		net, err := dhtsim.NewNetwork(dhtsim.Config{Seed: seed, Latency: sc.Latency})
		require.NoError(t, err)
		wstart := wallNow()
		cluster, err := dhtsim.NewCluster(ctx, net, dhtsim.ClusterConfig{
			Size: sc.Size, JoinConcurrency: sc.JoinConcurrency, Node: sc.Node,
			Progress: func(started int) {
				if step := max(sc.Size/10, 1); started%step < sc.JoinConcurrency && sc.Size >= 10_000 {
					t.Logf("%d/%d nodes started (wall %v)", started, sc.Size, wallNow().Sub(wstart).Round(time.Second))
				}
			},
		})
		require.NoError(t, err)
		closed := false
		defer func() {
			if !closed {
				_ = cluster.Close()
			}
		}()
		r.Build = wallNow().Sub(wstart)
		nodes := cluster.Nodes()
		r.Replicas = nodes[0].Config().NumReplicas
		mem.sample()
		var tables int
		for _, n := range nodes {
			tables += n.Stats().RoutingTable.Active
		}
		r.RoutingMean = float64(tables) / float64(len(nodes))

		// Stores: Keys values from random nodes.
		exp := dht.SystemClock{}.Now() + 24*3600
		keys := make([]dht.Key, sc.Keys)
		storers := make([]int, sc.Keys)
		for i := range keys {
			keys[i] = dht.MustKey(fmt.Sprintf("sim-key-%d-%d", seed, i))
			storers[i] = rng.IntN(sc.Size)
		}
		wstart = wallNow()
		var storesOK sync.Map
		parallel(sc.Concurrency, sc.Keys, func(i int) {
			res, err := nodes[storers[i]].Store(ctx, dht.StoreItem{Key: keys[i], Value: int64(i), Expiration: exp})
			require.NoError(t, err)
			if res.Stored {
				storesOK.Store(i, true)
			}
		})
		storesOK.Range(func(any, any) bool { r.StoresOK++; return true })
		r.Stores = wallNow().Sub(wstart)
		mem.sample()

		alive := func(i int) bool { return cluster.Endpoint(i).Alive() }
		getPhase := func() lookups {
			getters := make([]int, sc.Gets)
			which := make([]int, sc.Gets)
			for g := range getters {
				for {
					getters[g] = rng.IntN(sc.Size)
					if alive(getters[g]) {
						break
					}
				}
				which[g] = rng.IntN(sc.Keys)
			}
			var (
				mu  sync.Mutex
				out = lookups{Total: sc.Gets}
				// busy[i] holds a token while node i runs a get. A channel, not a mutex: waiting on
				// it is durably blocking, so synctest's clock keeps advancing.
				busy = make([]chan struct{}, sc.Size)
			)
			for i := range busy {
				busy[i] = make(chan struct{}, 1)
			}
			parallel(sc.Concurrency, sc.Gets, func(g int) {
				i := getters[g]
				busy[i] <- struct{}{} // one get at a time per node, so its counters belong to that get
				before, began := cluster.Endpoint(i).Stats(), time.Now()
				res, err := nodes[i].Get(ctx, keys[which[g]], dht.GetOptions{})
				took, d := time.Since(began), cluster.Endpoint(i).Stats().Sub(before)
				<-busy[i]
				require.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				out.RPCs = append(out.RPCs, int(d.Total().Calls))
				out.Finds = append(out.Finds, int(d.Find.Calls))
				out.Latency = append(out.Latency, took)
				if res != nil && !res.IsDictionary && len(res.Value) > 0 {
					out.OK++
				}
			})
			return out
		}

		wstart = wallNow()
		r.Healthy1 = getPhase()
		r.Healthy = wallNow().Sub(wstart)
		mem.sample()

		r.Top1, r.Jaccard = nearestAccuracy(t, ctx, rng, nodes, sc.Queries)
		r.ReplicaCounts = replicaCounts(t, ctx, rng, nodes, sc.ReplicaKeys, seed, exp)
		mem.sample()

		// Kill a fraction of the nodes (never to be revived), then get again.
		for _, i := range rng.Perm(sc.Size)[:int(sc.KillFraction*float64(sc.Size))] {
			cluster.Kill(i)
		}
		wstart = wallNow()
		r.AfterKill = getPhase()
		r.Kill = wallNow().Sub(wstart)
		r.HeapAfter = mem.sample()
		if path := os.Getenv("HIVEMIND_SIM_HEAPPROFILE"); path != "" {
			writeHeapProfile(t, path)
		}
		r.Virtual = time.Since(vstart)
		// Calls still waiting for a dead peer end when their nodes close: count them too.
		closed = true
		require.NoError(t, cluster.Close())
		r.NetStats = net.Stats()
	})
	r.PeakHeap = mem.peakHeap
	r.PeakRSS = peakRSS()
	return r
}

// writeHeapProfile writes a heap profile to path (HIVEMIND_SIM_HEAPPROFILE), taken at the end of a
// run while every node is still alive.
func writeHeapProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	runtime.GC()
	require.NoError(t, pprof.WriteHeapProfile(f))
	t.Logf("heap profile written to %s", path)
}

// parallel runs f(0..n-1) on at most workers goroutines.
func parallel(workers, n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// nearestAccuracy compares FindNearestNodes of random IDs from random nodes, with random k in
// [1, 10] and random excludeSelf, against a brute-force sort of all nodes (hivemind's
// test_dht_node, step 3): the fraction whose nearest node is right, and the mean Jaccard index.
func nearestAccuracy(t *testing.T, ctx context.Context, rng *rand.Rand, nodes []*dht.Node, queries int) (top1, jaccard float64) {
	t.Helper()
	ids := make([]dht.ID, len(nodes))
	for i, n := range nodes {
		ids[i] = n.NodeID()
	}
	var hits int
	var jsum float64
	for range queries {
		from := nodes[rng.IntN(len(nodes))]
		var q dht.ID
		for i := range q {
			q[i] = byte(rng.Uint32())
		}
		k := 1 + rng.IntN(10)
		excludeSelf := rng.IntN(2) == 0
		res, err := from.FindNearestNodes(ctx, []dht.ID{q}, k, excludeSelf)
		require.NoError(t, err)
		got := res[0]
		require.Len(t, got, k, "exactly k results")
		for i := 1; i < len(got); i++ {
			require.True(t, dht.CloserTo(q, got[i-1].ID, got[i].ID), "results sorted by distance")
		}
		want := make([]dht.ID, 0, len(ids))
		for _, id := range ids {
			if excludeSelf && id == from.NodeID() {
				continue
			}
			want = append(want, id)
		}
		slices.SortFunc(want, func(a, b dht.ID) int { return a.Xor(q).Cmp(b.Xor(q)) })
		want = want[:k]
		if excludeSelf {
			for _, c := range got {
				require.NotEqual(t, from.NodeID(), c.ID, "self excluded")
			}
		}
		if got[0].ID == want[0] {
			hits++
		}
		inter := 0
		for _, c := range got {
			if slices.Contains(want, c.ID) {
				inter++
			}
		}
		jsum += float64(inter) / float64(len(got)+len(want)-inter)
	}
	return float64(hits) / float64(queries), jsum / float64(queries)
}

// replicaCounts stores fresh keys, one at a time, and counts the nodes that hold each (hivemind's
// test_dhtnode_replicas), then overwrites each with a newer value and counts again. The storer of a
// key is chosen with an ID far from the key (first bit differs) so it is never a replica itself and
// its local cache (cache_on_store) can be left out of the count.
func replicaCounts(t *testing.T, ctx context.Context, rng *rand.Rand, nodes []*dht.Node, n int, seed int64, exp float64) []int {
	t.Helper()
	count := func(key dht.ID, storer int) int {
		c := 0
		for i, node := range nodes {
			if i == storer {
				continue
			}
			resp, err := node.HandleFind(ctx, "", &dhtpb.FindRequest{Keys: [][]byte{key.Bytes()}})
			require.NoError(t, err)
			if resp.GetResults()[0].GetType() != dhtpb.ResultType_NOT_FOUND {
				c++
			}
		}
		return c
	}
	var out []int
	for i := range n {
		key := dht.MustKey(fmt.Sprintf("sim-replica-%d-%d", seed, i))
		storer := rng.IntN(len(nodes))
		for nodes[storer].NodeID()[0]>>7 == key.ID()[0]>>7 {
			storer = rng.IntN(len(nodes))
		}
		for round, e := range []float64{exp, exp + 1} {
			res, err := nodes[storer].Store(ctx, dht.StoreItem{Key: key, Value: int64(round), Expiration: e})
			require.NoError(t, err)
			require.True(t, res.Stored)
			out = append(out, count(key.ID(), storer))
		}
	}
	return out
}

// wallNow reads the real clock. Inside a synctest bubble time.Now is virtual, so wall time comes
// from the OS directly.
func wallNow() time.Time {
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		return time.Time{}
	}
	return time.Unix(tv.Sec, tv.Usec*1000)
}
