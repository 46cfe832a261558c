package dht

import (
	"bytes"
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

// startAs starts a node as peer p the way an adapter does: New, serve it on the swarm's network,
// Bootstrap (the initial peers ping it back).
func (s *testSwarm) startAs(p PeerID, cfg Config) (*Node, error) {
	if cfg.NodeID == (ID{}) {
		cfg.NodeID = HashID([]byte(p))
	}
	node, err := New(cfg, p, s.net.endpoint(p))
	if err != nil {
		return nil, err
	}
	if !cfg.ClientMode {
		s.net.serve(p, node)
	}
	if err := node.Bootstrap(context.Background()); err != nil {
		s.net.serve(p, nil)
		return nil, errors.Join(err, node.Close())
	}
	return node, nil
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg, tc.self, tc.tr)
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

// TestNewSendsNothing: New only builds the node (it answers at once); traffic starts with Bootstrap,
// whose errors name every initial peer.
func TestNewSendsNothing(t *testing.T) {
	net := newLoopNet()
	cfg := Config{InitialPeers: []PeerID{"ghost1", "ghost2"}, Logger: quietLogger(), RefreshInterval: -1}
	n, err := New(cfg, "p", net.endpoint("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if calls := net.takeCalls(); len(calls) != 0 {
		t.Fatalf("New made %d calls", len(calls))
	}
	resp, err := n.HandlePing(t.Context(), "someone", &dhtpb.PingRequest{})
	if err != nil || !bytes.Equal(resp.GetPeer().GetNodeId(), n.NodeID().Bytes()) {
		t.Fatalf("a new node answers pings with its ID: %v, %v", resp, err)
	}
	err = n.Bootstrap(t.Context())
	if !errors.Is(err, ErrBootstrapFailed) {
		t.Fatalf("Bootstrap: %v, want ErrBootstrapFailed", err)
	}
	for _, ghost := range []PeerID{"ghost1", "ghost2"} {
		if !strings.Contains(err.Error(), fmtPeer(ghost)+": dht: peer did not respond") {
			t.Errorf("error %q does not name %s", err, fmtPeer(ghost))
		}
	}
	if got := len(net.takeCalls()); got != 2 {
		t.Errorf("Bootstrap sent %d pings, want 2", got)
	}
	_ = n.Close()
	if err := n.Bootstrap(t.Context()); !errors.Is(err, ErrShutdown) {
		t.Errorf("Bootstrap after Close: %v, want ErrShutdown", err)
	}
}
