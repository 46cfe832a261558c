package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

func TestHistogramBuckets(t *testing.T) {
	tests := []struct {
		name   string
		d      time.Duration
		bucket int
	}{
		{name: "zero", d: 0, bucket: 0},
		{name: "on the first bound", d: latencyBounds[0], bucket: 0},
		{name: "just above the first bound", d: latencyBounds[0] + 1, bucket: 1},
		{name: "a millisecond", d: time.Millisecond, bucket: 4},
		{name: "on the last bound", d: latencyBounds[len(latencyBounds)-1], bucket: len(latencyBounds) - 1},
		{name: "above every bound", d: time.Minute, bucket: len(latencyBounds)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h histogram
			h.observe(tc.d)
			p := h.proto()
			require.Len(t, p.GetBounds(), len(latencyBounds))
			require.Len(t, p.GetCounts(), len(latencyBounds)+1)
			for i, c := range p.GetCounts() {
				want := uint64(0)
				if i == tc.bucket {
					want = 1
				}
				assert.Equal(t, want, c, "bucket %d", i)
			}
			assert.InDelta(t, tc.d.Seconds(), p.GetSum(), 1e-12)
		})
	}
}

func TestHistogramObserveAllocatesNothing(t *testing.T) {
	var h histogram
	assert.Zero(t, testing.AllocsPerRun(100, func() { h.observe(3 * time.Millisecond) }))
	var c contactBook
	c.answered("peer", time.Millisecond, time.Now())
	assert.Zero(t, testing.AllocsPerRun(100, func() { c.answered("peer", time.Millisecond, time.Now()) }),
		"updating a known contact")
}

func TestContactBook(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	t.Run("moving average of round trips", func(t *testing.T) {
		var b contactBook
		b.answered("a", 10*time.Millisecond, t0)
		b.answered("a", 20*time.Millisecond, t0.Add(time.Second))
		c := b.snapshot()["a"]
		assert.Equal(t, 11*time.Millisecond, c.rtt)
		assert.Equal(t, t0.Add(time.Second), c.lastAnswer)
		assert.True(t, c.lastRequest.IsZero())
	})
	t.Run("a request is not an answer", func(t *testing.T) {
		var b contactBook
		b.requested("a", t0)
		c := b.snapshot()["a"]
		assert.True(t, c.lastAnswer.IsZero())
		assert.Zero(t, c.rtt)
		assert.Equal(t, t0, c.lastRequest)
	})
	t.Run("full: the least recently heard from goes", func(t *testing.T) {
		var b contactBook
		for i := range maxContacts {
			b.answered(dht.PeerID(rune('A'+i%26))+dht.PeerID(rune(i)), time.Millisecond, t0.Add(time.Duration(i+1)*time.Second))
		}
		oldest := dht.PeerID(rune('A')) + dht.PeerID(rune(0))
		b.requested(oldest, t0.Add(time.Hour)) // heard from again: now the newest
		b.answered("new", time.Millisecond, t0.Add(2*time.Hour))
		snap := b.snapshot()
		assert.Len(t, snap, maxContacts)
		assert.Contains(t, snap, dht.PeerID("new"))
		assert.Contains(t, snap, oldest)
		assert.NotContains(t, snap, dht.PeerID(rune('B'))+dht.PeerID(rune(1)), "the second oldest was evicted")
	})
}

// TestStatsReportCallsRPCsPeersAndMemory: two libp2p workers; after a store and a get, each one's
// Stats count the calls with their latency, the DHT RPCs in both directions with theirs, the other
// worker as a connected Go peer that answered its DHT RPCs, and the process's memory.
func TestStatsReportCallsRPCsPeersAndMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := testServer(t)
	ra := configure(t, ctx, a, &ipcpb.NodeConfig{HostMaddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	b := testServer(t)
	rb := configure(t, ctx, b, &ipcpb.NodeConfig{HostMaddrs: []string{"/ip4/127.0.0.1/tcp/0"}, InitialPeers: ra.GetPeer().GetVisibleMaddrs()})

	key := &ipcpb.Key{Data: pack(t, "k")}
	_, err := b.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key, Value: pack(t, 1), Expiration: dht.SystemClock{}.Now() + 60}})
	require.NoError(t, err)
	_, err = b.Get(ctx, &ipcpb.GetRequest{Key: key})
	require.NoError(t, err)
	_, err = b.Get(ctx, &ipcpb.GetRequest{})
	require.Error(t, err, "a get without a key")

	st, err := b.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	ops := map[string]*ipcpb.OpCounter{}
	for _, o := range st.GetOps() {
		ops[o.GetName()] = o
	}
	require.Len(t, ops, numOps)
	assert.Equal(t, uint64(2), ops["get"].GetCalls())
	assert.Equal(t, uint64(1), ops["get"].GetFailed())
	assert.Equal(t, uint64(1), ops["store"].GetCalls())
	assert.Equal(t, uint64(0), ops["store_many"].GetCalls())
	assert.Equal(t, uint64(1), total(ops["store"].GetLatency().GetCounts()))
	assert.Positive(t, ops["store"].GetLatency().GetSum())

	rpcs := map[string]*ipcpb.RPCCounter{}
	for _, r := range st.GetRpcs() {
		rpcs[r.GetName()] = r
	}
	require.Contains(t, rpcs, "rpc_store")
	assert.Equal(t, rpcs["rpc_store"].GetSent(), total(rpcs["rpc_store"].GetSentLatency().GetCounts()),
		"every sent store is timed")
	assert.Positive(t, total(rpcs["rpc_find"].GetSentLatency().GetCounts()))

	require.Len(t, st.GetPeers(), 1)
	p := st.GetPeers()[0]
	assert.Equal(t, ra.GetPeer().GetPeerIdB58(), p.GetPeerIdB58())
	assert.Equal(t, "hivemind-go", p.GetAgentVersion())
	assert.True(t, p.GetConnected())
	assert.False(t, p.GetRelayed())
	assert.True(t, p.GetDhtAnswered())
	assert.True(t, p.GetInRoutingTable(), "b bootstrapped from a: a is in b's routing table")
	assert.Positive(t, p.GetDhtRttSeconds())
	assert.GreaterOrEqual(t, p.GetDhtLastAnswerAgeSeconds(), 0.0)
	assert.Positive(t, st.GetRssBytes())
	assert.Positive(t, st.GetHeapBytes())
	assert.Positive(t, st.GetGoroutines())

	// The other side served those RPCs: it times them and knows b as a peer that sent requests.
	sa, err := a.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	for _, r := range sa.GetRpcs() {
		if r.GetName() == "rpc_store" {
			assert.Equal(t, r.GetReceived(), total(r.GetReceivedLatency().GetCounts()))
			assert.Positive(t, r.GetReceived())
		}
	}
	require.Len(t, sa.GetPeers(), 1)
	assert.Equal(t, rb.GetPeer().GetPeerIdB58(), sa.GetPeers()[0].GetPeerIdB58())
	assert.GreaterOrEqual(t, sa.GetPeers()[0].GetDhtLastRequestAgeSeconds(), 0.0)
}

// TestStatsWithAnotherNodeFactory: a node built by another factory reports its counters without
// latency histograms (it is not instrumented) and no peers; the calls are still counted.
func TestStatsWithAnotherNodeFactory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := NewServer(ServerConfig{Logger: quiet(), NewNode: NewLibp2pNode})
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	configure(t, ctx, s, &ipcpb.NodeConfig{HostMaddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	_, err := s.Get(ctx, &ipcpb.GetRequest{Key: &ipcpb.Key{Data: pack(t, "k")}})
	require.NoError(t, err)
	st, err := s.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	for _, r := range st.GetRpcs() {
		assert.Nil(t, r.GetSentLatency(), r.GetName())
		assert.Nil(t, r.GetReceivedLatency(), r.GetName())
	}
	assert.Empty(t, st.GetPeers())
	assert.Equal(t, uint64(1), st.GetOps()[opGet].GetCalls())
}

func total(counts []uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}
