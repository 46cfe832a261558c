package ipc

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
)

func TestHistogramQuantile(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1}
	tests := []struct {
		name   string
		counts []uint64
		q      float64
		want   float64
	}{
		{name: "empty", counts: []uint64{0, 0, 0, 0}, q: 0.5, want: math.NaN()},
		{name: "all in the first bucket: interpolated from 0", counts: []uint64{10, 0, 0, 0}, q: 0.5, want: 0.0005},
		{name: "median in the second bucket", counts: []uint64{2, 4, 4, 0}, q: 0.5, want: 0.001 + 0.009*3/4},
		{name: "p99 in the third bucket", counts: []uint64{50, 40, 10, 0}, q: 0.99, want: 0.01 + 0.09*9/10},
		{name: "overflow: the last bound", counts: []uint64{0, 0, 1, 9}, q: 0.99, want: 0.1},
		{name: "q=1 is the upper bound of the last bucket used", counts: []uint64{3, 1, 0, 0}, q: 1, want: 0.01},
		{name: "q=0 is the lower bound of the first bucket used", counts: []uint64{0, 5, 0, 0}, q: 0, want: 0.001},
		{name: "malformed: counts do not match bounds", counts: []uint64{1, 1}, q: 0.5, want: math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Histogram{Bounds: bounds, Counts: tc.counts}.Quantile(tc.q)
			if math.IsNaN(tc.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			assert.InDelta(t, tc.want, got, 1e-12)
		})
	}
}

func TestHistogramSub(t *testing.T) {
	bounds := []float64{0.001, 0.01}
	later := Histogram{Bounds: bounds, Counts: []uint64{5, 3, 1}, Sum: 2}
	tests := []struct {
		name string
		prev Histogram
		want Histogram
	}{
		{name: "an earlier snapshot", prev: Histogram{Bounds: bounds, Counts: []uint64{2, 3, 0}, Sum: 0.5},
			want: Histogram{Bounds: bounds, Counts: []uint64{3, 0, 1}, Sum: 1.5}},
		{name: "nothing before", prev: Histogram{}, want: later},
		{name: "another worker's (counts more somewhere)", prev: Histogram{Bounds: bounds, Counts: []uint64{9, 0, 0}, Sum: 1}, want: later},
		{name: "other bounds", prev: Histogram{Bounds: []float64{1, 2}, Counts: []uint64{0, 0, 0}}, want: later},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := later.Sub(tc.prev)
			assert.Equal(t, tc.want.Counts, got.Counts)
			assert.InDelta(t, tc.want.Sum, got.Sum, 1e-12)
			assert.Equal(t, tc.want.Count(), got.Count())
		})
	}
}

func TestPeerKindOf(t *testing.T) {
	tests := []struct{ agent, want string }{
		{agent: "hivemind-go", want: PeerGo},
		{agent: "hivemind-go/0.2", want: PeerGo},
		{agent: "p2pd/0.1", want: PeerHivemind},
		{agent: "p2pd", want: PeerHivemind},
		{agent: "kubo/0.30.0", want: PeerOther},
		{agent: "hivemind-gopher", want: PeerOther},
		{agent: "", want: PeerUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.agent, func(t *testing.T) { assert.Equal(t, tc.want, PeerKindOf(tc.agent)) })
	}
}

// TestStatsOfRealWorkers: two real worker processes on loopback; after one stores a record the
// other reads, their Stats count the calls with their latency, time the DHT RPCs in both
// directions, and list each other as a connected Go worker that answered their DHT RPCs.
func TestStatsOfRealWorkers(t *testing.T) {
	ctx := testCtx(t)
	l := selfLauncher(t, envTestNode+"=libp2p")
	loopback := []string{"/ip4/127.0.0.1/tcp/0"}
	a, err := StartWorker(ctx, WorkerConfig{Name: "a", Launcher: l, Logger: testLogger(t), Node: NodeConfig{HostMaddrs: loopback}})
	require.NoError(t, err)
	t.Cleanup(func() { a.Stop(ctx) })
	b, err := StartWorker(ctx, WorkerConfig{Name: "b", Launcher: l, Logger: testLogger(t),
		Node: NodeConfig{HostMaddrs: loopback, InitialPeers: a.Maddrs()}})
	require.NoError(t, err)
	t.Cleanup(func() { b.Stop(ctx) })

	key := dht.RawKey([]byte("k"))
	before := time.Now()
	_, err = a.Store(ctx, dht.StoreItem{Key: key, Value: rawMsgpack(t, 1), Expiration: dht.SystemClock{}.Now() + 60})
	require.NoError(t, err)
	got, err := b.Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got)

	st, err := a.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, a.PID(), st.PID)
	assert.Positive(t, st.RSSBytes)
	assert.Positive(t, st.HeapBytes)
	assert.Positive(t, st.Goroutines)
	ops := map[string]OpStats{}
	for _, o := range st.Ops {
		ops[o.Name] = o
	}
	assert.Equal(t, uint64(1), ops["store"].Calls)
	assert.Equal(t, uint64(1), ops["store"].Latency.Count())
	assert.Equal(t, uint64(0), ops["get"].Calls)
	assert.False(t, math.IsNaN(ops["store"].Latency.Quantile(0.5)))
	var store RPCStats
	for _, r := range st.RPCs {
		if r.Name == "rpc_store" {
			store = r
		}
	}
	assert.Equal(t, store.Sent, store.SentLatency.Count(), "every store a sent is timed")
	assert.Positive(t, store.Sent)
	assert.Equal(t, dht.OpCounts{Ops: 1, Rounds: 2, RPCs: 2}, st.Stores, "a FIND to b, then a STORE to b")

	require.Len(t, st.Peers, 1)
	p := st.Peers[0]
	assert.Equal(t, b.ID().Base58, p.PeerID)
	assert.Equal(t, PeerGo, p.Kind)
	assert.Equal(t, "hivemind-go", p.Agent)
	assert.True(t, p.Connected)
	assert.False(t, p.Relayed)
	assert.Positive(t, p.DHTRTT)
	assert.False(t, p.DHTLastAnswer.Before(before.Add(-time.Second)), "answered during the test")

	sb, err := b.Stats(ctx)
	require.NoError(t, err)
	var received uint64
	for _, r := range sb.RPCs {
		assert.Equal(t, r.Received, r.ReceivedLatency.Count(), r.Name)
		received += r.Received
	}
	assert.Positive(t, received)
	assert.Equal(t, dht.OpCounts{Ops: 1}, sb.Gets, "answered by the replica a's store left at b")
}

// TestPoolStatusCarriesWorkerStats: the slot's status shows the worker's figures after the next
// health check, and a reader that changes them changes nothing in the pool.
func TestPoolStatusCarriesWorkerStats(t *testing.T) {
	ctx := testCtx(t)
	p := execPool(t, ctx, 1, newEventLog(), nil)
	client := p.Client(0, ClientOptions{})
	_, err := client.Store(ctx, dht.StoreItem{Key: dht.RawKey([]byte("k")), Value: rawMsgpack(t, 1), Expiration: 4e9})
	require.NoError(t, err)
	storeCalls := func(s SlotStatus) uint64 {
		for _, o := range s.Ops {
			if o.Name == "store" {
				return o.Calls
			}
		}
		return 0
	}
	waitForCondition(ctx, t, "the store counted in the status", func() bool { return storeCalls(p.Status().Slots[0]) == 1 })
	st := p.Status().Slots[0]
	assert.Equal(t, st.PID, st.StatsPID)
	assert.Positive(t, st.RSSBytes)
	require.NotEmpty(t, st.Ops)
	st.Ops[0].Calls = 99
	st.Ops[0].Latency.Counts[0] = 99
	again := p.Status().Slots[0]
	assert.NotEqual(t, uint64(99), again.Ops[0].Calls)
	assert.NotEqual(t, uint64(99), again.Ops[0].Latency.Counts[0])
}
