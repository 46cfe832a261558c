package dht_test

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
)

// joinHarness is a swarm of size nodes (a dhtsim cluster) and one more node that started alone on
// the same network: no initial peers, so Bootstrap did nothing and its routing table is empty.
type joinHarness struct {
	net   *dhtsim.Network
	swarm *dhtsim.Cluster
	lone  *dht.Node
}

const joinRefresh = 30 * time.Second

func newJoinHarness(t *testing.T, size int) *joinHarness {
	t.Helper()
	net, err := dhtsim.NewNetwork(dhtsim.Config{
		Seed: 7, Latency: dhtsim.Latency{Base: 5 * time.Millisecond, Jitter: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	node := dht.Config{RefreshInterval: joinRefresh, WaitTimeout: time.Second}
	swarm, err := dhtsim.NewCluster(t.Context(), net, dhtsim.ClusterConfig{Size: size, Node: node})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = swarm.Close() })
	peer := net.PeerID(size)
	ep, err := net.Join(peer)
	if err != nil {
		t.Fatal(err)
	}
	node.NodeID, node.Logger = net.NodeID(size), net.Logger(peer)
	lone, err := dht.New(node, peer, ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lone.Close() })
	ep.Serve(lone)
	if err := lone.Bootstrap(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &joinHarness{net: net, swarm: swarm, lone: lone}
}

// knows counts the swarm nodes in n's routing table.
func (h *joinHarness) knows(n *dht.Node) int {
	c := 0
	for _, contact := range n.RoutingContacts() {
		for i := range h.swarm.Len() {
			if contact.ID == h.net.NodeID(i) {
				c++
			}
		}
	}
	return c
}

// TestAddInitialPeersJoinsASwarm: a node that started alone joins a swarm through one peer handed
// to it later: the peer answers, the lookup of the node's own ID fills its routing table, and
// records go both ways.
func TestAddInitialPeersJoinsASwarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newJoinHarness(t, 12)
		key := dht.MustKey("stored-in-the-swarm")
		if res, err := h.swarm.Node(5).Store(ctx, dht.StoreItem{Key: key, Value: 1, Expiration: dht.SystemClock{}.Now() + 600}); err != nil || !res.Stored {
			t.Fatalf("store in the swarm: %+v %v", res, err)
		}
		if got, err := h.lone.Get(ctx, key, dht.GetOptions{}); err != nil || got != nil {
			t.Fatalf("the lone node found %v (%v) before joining", got, err)
		}
		if n := h.knows(h.lone); n != 0 {
			t.Fatalf("the lone node knows %d swarm nodes before joining", n)
		}

		answered, err := h.lone.AddInitialPeers(ctx, []dht.PeerID{h.net.PeerID(3), h.net.PeerID(3), h.lone.PeerID()})
		if err != nil || answered != 1 {
			t.Fatalf("AddInitialPeers = %d, %v; want 1 answered (repeats and self ignored)", answered, err)
		}
		if got := h.lone.InitialPeers(); !slices.Equal(got, []dht.PeerID{h.net.PeerID(3)}) {
			t.Errorf("InitialPeers = %v, want only peer 3", got)
		}
		if n := h.knows(h.lone); n < 4 {
			t.Errorf("the lone node knows %d swarm nodes after joining; the lookup of its own ID should find more than its one peer", n)
		}
		if got, err := h.lone.Get(ctx, key, dht.GetOptions{}); err != nil || got == nil {
			t.Errorf("the joined node cannot get a record of the swarm: %v %v", got, err)
		}
		mine := dht.MustKey("stored-by-the-newcomer")
		if res, err := h.lone.Store(ctx, dht.StoreItem{Key: mine, Value: 2, Expiration: dht.SystemClock{}.Now() + 600}); err != nil || !res.Stored {
			t.Fatalf("store through the joined node: %+v %v", res, err)
		}
		for _, i := range []int{0, 11} {
			if got, err := h.swarm.Node(i).Get(ctx, mine, dht.GetOptions{}); err != nil || got == nil {
				t.Errorf("swarm node %d cannot get the newcomer's record: %v %v", i, got, err)
			}
		}
	})
}

// TestAddInitialPeersRefreshKeepsTrying: an added peer that does not answer yet is kept: the
// routing-table refresh re-contacts it every RefreshInterval, so the node joins once the peer comes
// back, and again after the peer went missing from its routing table.
func TestAddInitialPeersRefreshKeepsTrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		h := newJoinHarness(t, 8)
		peer := h.net.PeerID(2)
		h.net.Kill(peer)
		answered, err := h.lone.AddInitialPeers(ctx, []dht.PeerID{peer})
		if err != nil || answered != 0 {
			t.Fatalf("AddInitialPeers of a dead peer = %d, %v; want 0, nil", answered, err)
		}
		time.Sleep(2 * joinRefresh)
		if n := h.knows(h.lone); n != 0 {
			t.Fatalf("the lone node knows %d swarm nodes while its only peer is dead", n)
		}

		h.net.Revive(peer)
		time.Sleep(2 * joinRefresh) // no traffic of ours: only the refresh can reach the peer
		if n := h.knows(h.lone); n < 4 {
			t.Fatalf("the node knows %d swarm nodes two refresh periods after its added peer came back", n)
		}

		// Cut the node off until it forgot every swarm node, then let it back: the refresh
		// re-contacts the added peer again.
		var swarm []dht.PeerID
		for i := range h.swarm.Len() {
			swarm = append(swarm, h.net.PeerID(i))
		}
		h.net.Partition([]dht.PeerID{h.lone.PeerID()}, swarm)
		for round := range 4 {
			_, _ = h.lone.FindNearestNodes(ctx, []dht.ID{dhtsim.NodeIDFor(99, round)}, 0, false)
			time.Sleep(joinRefresh / 2)
		}
		if n := h.knows(h.lone); n != 0 {
			t.Fatalf("the node still knows %d swarm nodes after the partition's traffic", n)
		}
		h.net.Heal()
		time.Sleep(2 * joinRefresh)
		if n := h.knows(h.lone); n < 4 {
			t.Errorf("the node knows %d swarm nodes two refresh periods after the partition healed", n)
		}
	})
}

// TestAddInitialPeersErrors: an empty peer ID is rejected with nothing added; a closed node
// returns ErrShutdown.
func TestAddInitialPeersErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newJoinHarness(t, 2)
		if _, err := h.lone.AddInitialPeers(t.Context(), []dht.PeerID{h.net.PeerID(0), ""}); !errors.Is(err, dht.ErrInvalidArgument) {
			t.Errorf("empty peer ID: err = %v, want ErrInvalidArgument", err)
		}
		if got := h.lone.InitialPeers(); len(got) != 0 {
			t.Errorf("a rejected call added %v", got)
		}
		if n, err := h.lone.AddInitialPeers(t.Context(), nil); n != 0 || err != nil {
			t.Errorf("no peers: %d, %v; want 0, nil", n, err)
		}
		_ = h.lone.Close()
		if _, err := h.lone.AddInitialPeers(t.Context(), []dht.PeerID{h.net.PeerID(0)}); !errors.Is(err, dht.ErrShutdown) {
			t.Errorf("closed node: err = %v, want ErrShutdown", err)
		}
	})
}
