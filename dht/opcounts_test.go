package dht

import (
	"testing"
)

// TestOpCounts: Stats.Gets and Stats.Stores count each completed operation with its sequential RPC
// rounds and its RPCs. A client-mode node whose only peer is a server: a GET is one FIND (one
// round); a STORE is a FIND, then a STORE that waits for it (two rounds); what the local storage
// answers makes none. (A lookup's calls end before the operation returns here: nothing is left
// in flight to count later.)
func TestOpCounts(t *testing.T) {
	s := newTestSwarm(t, 1, nil)
	server := s.nodes[0]
	client := s.add(t, Config{
		Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, ClientMode: true,
		InitialPeers:        []PeerID{testPeer(0)},
		DisableCacheLocally: true, CacheNearest: -1, DisableCacheOnStore: true, DisableGetReuse: true,
	})
	now := s.clock.Now()
	if res, err := server.Store(t.Context(), StoreItem{Key: MustKey("held"), Value: 1, Expiration: now + 60}); err != nil || !res.Stored {
		t.Fatalf("server store: %+v, %v", res, err)
	}
	tests := []struct {
		name  string
		node  *Node
		op    func(n *Node) error
		gets  OpCounts
		store OpCounts
	}{
		{name: "get found at the server", node: client, gets: OpCounts{Ops: 1, Rounds: 1, RPCs: 1},
			op: func(n *Node) error { _, err := n.Get(t.Context(), MustKey("held"), GetOptions{}); return err }},
		{name: "get of a missing key", node: client, gets: OpCounts{Ops: 1, Rounds: 1, RPCs: 1},
			op: func(n *Node) error { _, err := n.Get(t.Context(), MustKey("missing"), GetOptions{}); return err }},
		{name: "get answered locally", node: server, gets: OpCounts{Ops: 1},
			op: func(n *Node) error { _, err := n.Get(t.Context(), MustKey("held"), GetOptions{}); return err }},
		// queries_per_call is int(sqrt(2)) = 1: a FIND per key, side by side.
		{name: "get of two keys", node: client, gets: OpCounts{Ops: 1, Rounds: 1, RPCs: 2},
			op: func(n *Node) error {
				_, err := n.GetMany(t.Context(), []Key{MustKey("held"), MustKey("missing")}, GetOptions{Latest: true})
				return err
			}},
		{name: "store from the client", node: client, store: OpCounts{Ops: 1, Rounds: 2, RPCs: 2},
			op: func(n *Node) error {
				_, err := n.Store(t.Context(), StoreItem{Key: MustKey("new"), Value: 2, Expiration: now + 60})
				return err
			}},
		{name: "store on a lone server", node: server, store: OpCounts{Ops: 1},
			op: func(n *Node) error {
				_, err := n.Store(t.Context(), StoreItem{Key: MustKey("local"), Value: 3, Expiration: now + 60})
				return err
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.node.Stats()
			if err := tc.op(tc.node); err != nil {
				t.Fatal(err)
			}
			after := tc.node.Stats()
			if got := opDelta(after.Gets, before.Gets); got != tc.gets {
				t.Errorf("Gets grew by %+v, want %+v", got, tc.gets)
			}
			if got := opDelta(after.Stores, before.Stores); got != tc.store {
				t.Errorf("Stores grew by %+v, want %+v", got, tc.store)
			}
		})
	}
}

func opDelta(a, b OpCounts) OpCounts {
	return OpCounts{Ops: a.Ops - b.Ops, Rounds: a.Rounds - b.Rounds, RPCs: a.RPCs - b.RPCs}
}
