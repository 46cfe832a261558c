package dht

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// testSwarm is a set of real Nodes on a loopNet, node i bootstrapped from node 0 (a star at first;
// bootstrap lookups and later traffic fill the routing tables).
type testSwarm struct {
	net   *loopNet
	nodes []*Node
	clock *fakeClock
	extra int // nodes started outside the swarm
}

func testPeer(i int) PeerID { return PeerID(fmt.Sprintf("peer-%03d", i)) }

// newTestSwarm starts n nodes; tweak adjusts each node's config (i is the node's index).
func newTestSwarm(t testing.TB, n int, tweak func(i int, cfg *Config)) *testSwarm {
	t.Helper()
	s := &testSwarm{net: newLoopNet(), clock: &fakeClock{now: 1_700_000_000}}
	for i := range n {
		cfg := Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1}
		if i > 0 {
			cfg.InitialPeers = []PeerID{testPeer(0)}
		}
		if tweak != nil {
			tweak(i, &cfg)
		}
		s.add(t, cfg)
	}
	return s
}

// add starts one more node with cfg.
func (s *testSwarm) add(t testing.TB, cfg Config) *Node {
	t.Helper()
	node, err := s.startAs(testPeer(len(s.nodes)), cfg)
	if err != nil {
		t.Fatalf("node %d: %v", len(s.nodes), err)
	}
	t.Cleanup(func() { _ = node.Close() })
	s.nodes = append(s.nodes, node)
	return node
}

// start starts a node outside the swarm's list (the caller closes it).
func (s *testSwarm) start(cfg Config) (*Node, error) {
	s.extra++
	return s.startAs(PeerID(fmt.Sprintf("extra-%03d", s.extra)), cfg)
}

// startAs starts a node as peer p, served on the swarm's network before New returns (as a real
// adapter would: the initial peers ping it back during bootstrap).
func (s *testSwarm) startAs(p PeerID, cfg Config) (*Node, error) {
	if cfg.NodeID == (ID{}) {
		cfg.NodeID = HashID([]byte(p))
	}
	// Serve before New returns: the initial peer pings us back during bootstrap.
	var clock Clock = SystemClock{}
	if cfg.Clock != nil {
		clock = cfg.Clock
	}
	late := &lateHandler{id: cfg.NodeID, clock: clock, ready: make(chan struct{})}
	if !cfg.ClientMode {
		s.net.serve(p, late)
	}
	node, err := New(context.Background(), cfg, p, s.net.endpoint(p))
	late.node = node
	close(late.ready)
	if err != nil {
		s.net.serve(p, nil)
		return nil, err
	}
	if !cfg.ClientMode {
		s.net.serve(p, node)
	}
	return node, nil
}

// lateHandler serves a node while New bootstraps it: pings are answered with the node ID it will
// have, STORE and FIND wait for the node.
type lateHandler struct {
	id    ID
	clock Clock
	ready chan struct{}
	node  *Node // set before ready is closed; nil if New failed
}

func (h *lateHandler) wait(ctx context.Context) (*Node, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if h.node == nil {
		return nil, errors.New("node failed to start")
	}
	return h.node, nil
}

func (h *lateHandler) HandlePing(ctx context.Context, from PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	select {
	case <-h.ready:
		n, err := h.wait(ctx)
		if err != nil {
			return nil, err
		}
		return n.HandlePing(ctx, from, req)
	default:
		return &dhtpb.PingResponse{Peer: &dhtpb.NodeInfo{NodeId: h.id.Bytes()}, DhtTime: h.clock.Now()}, nil
	}
}

func (h *lateHandler) HandleStore(ctx context.Context, from PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	n, err := h.wait(ctx)
	if err != nil {
		return nil, err
	}
	return n.HandleStore(ctx, from, req)
}

func (h *lateHandler) HandleFind(ctx context.Context, from PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	n, err := h.wait(ctx)
	if err != nil {
		return nil, err
	}
	return n.HandleFind(ctx, from, req)
}

func TestNodeStoreGet(t *testing.T) {
	s := newTestSwarm(t, 10, nil)
	ctx := t.Context()
	now := s.clock.Now()
	a, b := s.nodes[3], s.nodes[7]

	res, err := a.Store(ctx, StoreItem{Key: MustKey("key1"), Value: "value1", Expiration: now + 30})
	if err != nil || !res.Stored {
		t.Fatalf("store: %+v, %v", res, err)
	}
	for _, n := range []*Node{a, b} {
		got, err := n.Get(ctx, MustKey("key1"), GetOptions{})
		if err != nil || got == nil {
			t.Fatalf("get: %v, %v", got, err)
		}
		if v, _ := msgpack.Unmarshal(got.Value); v != "value1" || got.Expiration != now+30 {
			t.Errorf("get = %v exp %v", v, got.Expiration)
		}
	}
	missing, err := b.Get(ctx, MustKey("key2"), GetOptions{})
	if err != nil || missing != nil {
		t.Errorf("missing key: %+v, %v", missing, err)
	}
}

func TestNewErrors(t *testing.T) {
	net := newLoopNet()
	tests := []struct {
		name string
		cfg  Config
		self PeerID
		tr   Transport
		want error
		text string
	}{
		{name: "nil transport", self: "p", want: ErrInvalidArgument},
		{name: "empty self", tr: net.endpoint(""), want: ErrInvalidArgument},
		{name: "bad config", cfg: Config{BucketSize: -1, NumWorkers: -2}, self: "p", tr: net.endpoint("p"), text: "BucketSize"},
		{
			name: "no initial peer answers", cfg: Config{InitialPeers: []PeerID{"ghost1", "ghost2"}, Logger: quietLogger()},
			self: "p", tr: net.endpoint("p"), want: ErrBootstrapFailed, text: fmtPeer("ghost2") + ": dht: peer did not respond",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(t.Context(), tc.cfg, tc.self, tc.tr)
			if err == nil {
				_ = n.Close()
				t.Fatal("New succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not mention %q", err, tc.text)
			}
		})
	}
}
