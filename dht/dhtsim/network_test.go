package dhtsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// fakeHandler answers every RPC and records what it saw.
type fakeHandler struct {
	name    string
	block   bool // HandleFind waits for its context
	fail    error
	mu      sync.Mutex
	froms   []dht.PeerID
	lastReq *dhtpb.StoreRequest
	ctxErr  chan error
}

func (h *fakeHandler) record(from dht.PeerID) {
	h.mu.Lock()
	h.froms = append(h.froms, from)
	h.mu.Unlock()
}

func (h *fakeHandler) HandlePing(_ context.Context, from dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	h.record(from)
	if h.fail != nil {
		return nil, h.fail
	}
	return &dhtpb.PingResponse{Peer: &dhtpb.NodeInfo{NodeId: []byte(h.name)}, DhtTime: 42, Available: req.GetValidate()}, nil
}

func (h *fakeHandler) HandleStore(_ context.Context, from dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	h.record(from)
	h.mu.Lock()
	h.lastReq = req
	h.mu.Unlock()
	ok := make([]bool, len(req.GetKeys()))
	for i := range ok {
		ok[i] = true
	}
	// Scribble on the request: the caller's copy must not change.
	for _, k := range req.Keys {
		if len(k) > 0 {
			k[0] ^= 0xff
		}
	}
	return &dhtpb.StoreResponse{StoreOk: ok, Peer: &dhtpb.NodeInfo{NodeId: []byte(h.name)}}, nil
}

func (h *fakeHandler) HandleFind(ctx context.Context, from dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	h.record(from)
	if h.block {
		<-ctx.Done()
		h.ctxErr <- ctx.Err()
		return nil, ctx.Err()
	}
	res := make([]*dhtpb.FindResult, len(req.GetKeys()))
	for i := range res {
		res[i] = &dhtpb.FindResult{Type: dhtpb.ResultType_NOT_FOUND}
	}
	return &dhtpb.FindResponse{Results: res, Peer: &dhtpb.NodeInfo{NodeId: []byte(h.name)}}, nil
}

// pair builds a network with two serving peers a and b.
func pair(t *testing.T, cfg Config) (*Network, *Endpoint, *Endpoint, *fakeHandler) {
	t.Helper()
	n, err := NewNetwork(cfg)
	require.NoError(t, err)
	a, err := n.Join(n.PeerID(0))
	require.NoError(t, err)
	b, err := n.Join(n.PeerID(1))
	require.NoError(t, err)
	hb := &fakeHandler{name: "b", ctxErr: make(chan error, 1)}
	a.Serve(&fakeHandler{name: "a"})
	b.Serve(hb)
	return n, a, b, hb
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "zero", cfg: Config{}, ok: true},
		{name: "full", cfg: Config{Seed: 7, Latency: Latency{Base: time.Millisecond, Jitter: time.Millisecond, Dist: Exponential},
			DropRate: 1, Unreachable: Refuse, SilentTimeout: time.Second}, ok: true},
		{name: "negative base", cfg: Config{Latency: Latency{Base: -1}}},
		{name: "negative jitter", cfg: Config{Latency: Latency{Jitter: -1}}},
		{name: "bad dist", cfg: Config{Latency: Latency{Dist: 9}}},
		{name: "drop above 1", cfg: Config{DropRate: 1.5}},
		{name: "drop negative", cfg: Config{DropRate: -0.1}},
		{name: "bad unreachable", cfg: Config{Unreachable: 5}},
		{name: "negative silent timeout", cfg: Config{SilentTimeout: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			_, err = NewNetwork(tt.cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
}

func TestRoundTrip(t *testing.T) {
	n, a, b, hb := pair(t, Config{Seed: 1})
	ctx := context.Background()

	resp, err := a.Ping(ctx, b.ID(), &dhtpb.PingRequest{Validate: true})
	require.NoError(t, err)
	assert.Equal(t, []byte("b"), resp.GetPeer().GetNodeId())
	assert.True(t, resp.GetAvailable())

	key := []byte{1, 2, 3}
	req := &dhtpb.StoreRequest{Keys: [][]byte{key}, Values: [][]byte{{9}}, ExpirationTime: []float64{1}, InCache: []bool{false}}
	sresp, err := a.Store(ctx, b.ID(), req)
	require.NoError(t, err)
	assert.Equal(t, []bool{true}, sresp.GetStoreOk())
	assert.Equal(t, []byte{1, 2, 3}, key, "the handler's scribbles must not reach the caller's request")
	hb.mu.Lock()
	assert.NotSame(t, req, hb.lastReq, "copy on send")
	hb.mu.Unlock()

	fresp, err := a.Find(ctx, b.ID(), &dhtpb.FindRequest{Keys: [][]byte{key, key}})
	require.NoError(t, err)
	assert.Len(t, fresp.GetResults(), 2)

	hb.mu.Lock()
	assert.Equal(t, []dht.PeerID{a.ID(), a.ID(), a.ID()}, hb.froms, "from is the caller's peer ID")
	hb.mu.Unlock()

	st := n.Stats()
	assert.Equal(t, uint64(1), st.Ping.Calls)
	assert.Equal(t, uint64(1), st.Store.Delivered)
	assert.Equal(t, uint64(3), st.Total().Calls)
	assert.Equal(t, uint64(0), st.Total().Failed)
	assert.Equal(t, uint64(proto.Size(req)), st.Store.RequestBytes)
	assert.Equal(t, st, a.Stats(), "a made every call")
	assert.Equal(t, uint64(1), b.Served(Find))
	assert.Equal(t, uint64(0), a.Served(Find))
}

func TestFailuresFast(t *testing.T) {
	tests := []struct {
		name  string
		setup func(n *Network, a, b *Endpoint)
		to    func(n *Network, b *Endpoint) dht.PeerID
		want  error
	}{
		{name: "unknown peer", to: func(n *Network, _ *Endpoint) dht.PeerID { return n.PeerID(99) }, want: ErrUnknownPeer},
		{name: "no handler", setup: func(_ *Network, _, b *Endpoint) { b.Serve(nil) }, want: ErrNoHandler},
		{name: "caller killed", setup: func(n *Network, a, _ *Endpoint) { n.Kill(a.ID()) }, want: ErrCallerDown},
		{name: "callee killed, refuse", setup: func(n *Network, _, b *Endpoint) { n.Kill(b.ID()) }, want: ErrUnreachable},
		{name: "partitioned, refuse", setup: func(n *Network, a, b *Endpoint) { n.Partition([]dht.PeerID{a.ID()}) }, want: ErrUnreachable},
		{name: "left", setup: func(n *Network, _, b *Endpoint) { n.Leave(b.ID()) }, want: ErrUnknownPeer},
		{name: "remote error", setup: func(_ *Network, _, b *Endpoint) { b.Serve(&fakeHandler{fail: errors.New("boom")}) }, want: ErrRemote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, a, b, _ := pair(t, Config{Unreachable: Refuse})
			if tt.setup != nil {
				tt.setup(n, a, b)
			}
			to := b.ID()
			if tt.to != nil {
				to = tt.to(n, b)
			}
			_, err := a.Ping(context.Background(), to, &dhtpb.PingRequest{})
			require.ErrorIs(t, err, dht.ErrNoResponse)
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, uint64(1), n.Stats().Ping.Failed)
		})
	}
}

func TestRemoteErrorKeepsOnlyText(t *testing.T) {
	_, a, b, _ := pair(t, Config{})
	b.Serve(&fakeHandler{fail: fmt.Errorf("wrapped: %w", dht.ErrShutdown)})
	_, err := a.Ping(context.Background(), b.ID(), &dhtpb.PingRequest{})
	require.ErrorIs(t, err, ErrRemote)
	assert.NotErrorIs(t, err, dht.ErrShutdown, "error identity does not cross a real wire")
	assert.Contains(t, err.Error(), "node is shut down")
}

func TestHealAndRevive(t *testing.T) {
	n, a, b, _ := pair(t, Config{Unreachable: Refuse})
	ctx := context.Background()
	n.Partition([]dht.PeerID{a.ID()}, []dht.PeerID{b.ID()})
	_, err := a.Ping(ctx, b.ID(), &dhtpb.PingRequest{})
	require.ErrorIs(t, err, ErrUnreachable)
	n.Heal()
	_, err = a.Ping(ctx, b.ID(), &dhtpb.PingRequest{})
	require.NoError(t, err)

	n.Kill(b.ID())
	assert.False(t, b.Alive())
	_, err = a.Ping(ctx, b.ID(), &dhtpb.PingRequest{})
	require.ErrorIs(t, err, ErrUnreachable)
	n.Revive(b.ID())
	_, err = a.Ping(ctx, b.ID(), &dhtpb.PingRequest{})
	require.NoError(t, err)
}

func TestDuplicateJoin(t *testing.T) {
	n, err := NewNetwork(Config{})
	require.NoError(t, err)
	_, err = n.Join("x")
	require.NoError(t, err)
	_, err = n.Join("x")
	require.ErrorIs(t, err, ErrDuplicatePeer)
	assert.Equal(t, 1, n.Len())
	assert.NotNil(t, n.Endpoint("x"))
	assert.Nil(t, n.Endpoint("y"))
}

func TestSilentFailuresWaitVirtualTime(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		setup    func(n *Network, a, b *Endpoint)
		deadline time.Duration // 0: no deadline on the caller's context
		want     time.Duration
	}{
		{name: "dead peer, ctx deadline", setup: func(n *Network, _, b *Endpoint) { n.Kill(b.ID()) },
			deadline: time.Second, want: time.Second},
		{name: "dead peer, no deadline", setup: func(n *Network, _, b *Endpoint) { n.Kill(b.ID()) },
			want: DefaultSilentTimeout},
		{name: "dead peer, short silent timeout", cfg: Config{SilentTimeout: 200 * time.Millisecond},
			setup: func(n *Network, _, b *Endpoint) { n.Kill(b.ID()) }, deadline: time.Second, want: 200 * time.Millisecond},
		{name: "partitioned", setup: func(n *Network, _, b *Endpoint) { n.Partition([]dht.PeerID{b.ID()}) },
			deadline: 2 * time.Second, want: 2 * time.Second},
		{name: "everything dropped", cfg: Config{DropRate: 1}, deadline: time.Second, want: time.Second},
		{name: "dropped after latency", cfg: Config{Latency: Latency{Base: 10 * time.Millisecond},
			Hooks: Hooks{BeforeCall: func(Call) Verdict { return Drop }}}, deadline: time.Second, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, a, b, _ := pair(t, tt.cfg)
				if tt.setup != nil {
					tt.setup(n, a, b)
				}
				ctx := t.Context()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				_, err := a.Ping(ctx, b.ID(), &dhtpb.PingRequest{})
				require.ErrorIs(t, err, dht.ErrNoResponse)
				require.ErrorIs(t, err, ErrTimeout)
				assert.Equal(t, tt.want, time.Since(start))
			})
		})
	}
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b, _ := pair(t, Config{Latency: Latency{Base: 25 * time.Millisecond}})
		start := time.Now()
		_, err := a.Ping(t.Context(), b.ID(), &dhtpb.PingRequest{})
		require.NoError(t, err)
		assert.Equal(t, 50*time.Millisecond, time.Since(start), "a round trip is two one-way latencies")
	})
}

func TestJitterBounds(t *testing.T) {
	tests := []struct {
		name       string
		dist       Dist
		meanJitter float64 // in units of Jitter
	}{
		{name: "uniform", dist: Uniform, meanJitter: 0.5},
		{name: "exponential", dist: Exponential, meanJitter: 1},
	}
	for _, tt := range tests {
		dist := tt.dist
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base, jitter := 10*time.Millisecond, 20*time.Millisecond
				_, a, b, _ := pair(t, Config{Seed: 3, Latency: Latency{Base: base, Jitter: jitter, Dist: dist}})
				var total time.Duration
				distinct := map[time.Duration]bool{}
				const calls = 200
				for range calls {
					start := time.Now()
					_, err := a.Ping(t.Context(), b.ID(), &dhtpb.PingRequest{})
					require.NoError(t, err)
					rtt := time.Since(start)
					require.GreaterOrEqual(t, rtt, 2*base)
					maxJitter := jitter
					if dist == Exponential {
						maxJitter = 10 * jitter
					}
					require.LessOrEqual(t, rtt, 2*(base+maxJitter))
					total += rtt
					distinct[rtt] = true
				}
				mean := total / calls
				assert.InDelta(t, 2*(float64(base)+tt.meanJitter*float64(jitter)), float64(mean), float64(jitter)*0.5, "mean rtt")
				assert.Greater(t, len(distinct), calls/2, "jitter varies")
			})
		})
	}
}

// outcomes runs sequential calls from peer 0 to peers 1..3 and returns which failed.
func outcomes(t *testing.T, seed int64) []bool {
	t.Helper()
	var got []bool
	synctest.Test(t, func(t *testing.T) {
		n, err := NewNetwork(Config{Seed: seed, DropRate: 0.3, SilentTimeout: time.Millisecond})
		require.NoError(t, err)
		eps := make([]*Endpoint, 4)
		for i := range eps {
			eps[i], err = n.Join(n.PeerID(i))
			require.NoError(t, err)
			eps[i].Serve(&fakeHandler{})
		}
		for i := range 300 {
			_, err := eps[0].Find(t.Context(), eps[1+i%3].ID(), &dhtpb.FindRequest{})
			got = append(got, err != nil)
		}
	})
	return got
}

func TestSameSeedSameFates(t *testing.T) {
	a, b, c := outcomes(t, 11), outcomes(t, 11), outcomes(t, 12)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c)
	failed := 0
	for _, f := range a {
		if f {
			failed++
		}
	}
	// Each call survives two independent 30 % drops: 49 % success.
	assert.InDelta(t, 0.51, float64(failed)/float64(len(a)), 0.1)
}

func TestHooks(t *testing.T) {
	var after atomic.Int64
	var lastOut atomic.Pointer[Outcome]
	cfg := Config{Seed: 5, Hooks: Hooks{
		BeforeCall: func(c Call) Verdict {
			if c.Kind == Store {
				return Reject
			}
			return Deliver
		},
		AfterCall: func(c Call, o Outcome) {
			after.Add(1)
			lastOut.Store(&o)
		},
	}}
	_, a, b, _ := pair(t, cfg)
	_, err := a.Store(context.Background(), b.ID(), &dhtpb.StoreRequest{Keys: [][]byte{{1}}})
	require.ErrorIs(t, err, ErrRejected)
	require.ErrorIs(t, lastOut.Load().Err, ErrRejected)
	assert.False(t, lastOut.Load().Delivered)

	resp, err := a.Ping(context.Background(), b.ID(), &dhtpb.PingRequest{})
	require.NoError(t, err)
	o := lastOut.Load()
	assert.True(t, o.Delivered)
	assert.NoError(t, o.Err)
	assert.Same(t, resp, o.Response)
	assert.Equal(t, proto.Size(resp), o.ResponseBytes)
	assert.Equal(t, int64(2), after.Load())
}

func TestCallerGivesUpHandlerCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b, hb := pair(t, Config{})
		hb.block = true
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := a.Find(ctx, b.ID(), &dhtpb.FindRequest{})
		require.ErrorIs(t, err, ErrTimeout)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, <-hb.ctxErr, context.Canceled, "the handler's context ends with the caller's")
	})
}

func TestConcurrentCalls(t *testing.T) {
	n, err := NewNetwork(Config{Seed: 9, DropRate: 0.1, SilentTimeout: time.Millisecond,
		Hooks: Hooks{AfterCall: func(Call, Outcome) {}}})
	require.NoError(t, err)
	const peers = 16
	eps := make([]*Endpoint, peers)
	for i := range eps {
		eps[i], err = n.Join(n.PeerID(i))
		require.NoError(t, err)
		eps[i].Serve(&fakeHandler{})
	}
	var wg sync.WaitGroup
	for i := range eps {
		wg.Go(func() {
			for j := range 50 {
				_, _ = eps[i].Find(context.Background(), eps[(i+j)%peers].ID(), &dhtpb.FindRequest{Keys: [][]byte{{byte(j)}}})
			}
		})
	}
	wg.Go(func() { n.Partition([]dht.PeerID{eps[0].ID()}) })
	wg.Wait()
	n.Heal()
	st := n.Stats()
	assert.Equal(t, uint64(peers*50), st.Find.Calls)
	var sum uint64
	for _, ep := range eps {
		sum += ep.Stats().Find.Calls
	}
	assert.Equal(t, st.Find.Calls, sum)
}

func TestIDs(t *testing.T) {
	n, err := NewNetwork(Config{Seed: 1})
	require.NoError(t, err)
	assert.Len(t, string(n.PeerID(0)), 38)
	assert.Equal(t, n.PeerID(5), PeerIDFor(1, 5))
	assert.NotEqual(t, n.PeerID(5), n.PeerID(6))
	assert.NotEqual(t, PeerIDFor(1, 5), PeerIDFor(2, 5))
	assert.Equal(t, n.NodeID(5), NodeIDFor(1, 5))
	assert.NotEqual(t, n.NodeID(5), n.NodeID(6))
	assert.Equal(t, Rand(1, 2, 3), Rand(1, 2, 3))
	assert.NotEqual(t, Rand(1, 2, 3), Rand(1, 3, 2))
	assert.NotNil(t, n.Logger(n.PeerID(0)))
}
