package dht

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// These tests pin the protocol-level defences against a hostile peer (test/hostile): one routing
// table slot per peer, failures that evict only the failing peer's own entry, and the expiration
// horizon of inbound STOREs. Each fails on hivemind's behaviour.

// pingAs delivers a non-validating PING from peer claiming node ID id.
func pingAs(t *testing.T, n *Node, peer PeerID, id ID) {
	t.Helper()
	if _, err := n.HandlePing(t.Context(), peer, &dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{NodeId: id.Bytes()}}); err != nil {
		t.Fatalf("ping from %s: %v", peer, err)
	}
}

// TestOneNodeIDPerPeer: a peer pinging under 100 node IDs holds one routing-table entry, under the
// latest ID (hivemind adds an entry per ID: hostile attack fake-node-ids).
func TestOneNodeIDPerPeer(t *testing.T) {
	n := newTestSwarm(t, 1, nil).nodes[0]
	rng := rngFor(t)
	var ids []ID
	for range 100 {
		id := randID(rng)
		ids = append(ids, id)
		pingAs(t, n, "attacker", id)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.table.Stats()
	if st.Active+st.Replacements != 1 || st.NodeIDs != 1 || st.PeerIDs != 1 {
		t.Errorf("after 100 node IDs from one peer the table holds %+v, want one node", st)
	}
	last := ids[len(ids)-1]
	if got, ok := n.table.IDByPeer("attacker"); !ok || got != last {
		t.Errorf("IDByPeer = %v, %v; want the latest ID %v", got, ok, last)
	}
	if p, ok := n.table.PeerByID(last); !ok || p != "attacker" {
		t.Errorf("PeerByID(latest) = %q, %v", p, ok)
	}
	for _, id := range ids[:len(ids)-1] {
		if _, ok := n.table.PeerByID(id); ok {
			t.Fatalf("an earlier ID %v is still in the table", id)
		}
	}
}

// TestNodeRestartWithNewID: a node that restarts under the same peer with a fresh node ID (hivemind's
// default) replaces its old entry at once, and a peer that re-announces the ID it holds keeps it.
func TestNodeRestartWithNewID(t *testing.T) {
	s := newTestSwarm(t, 2, nil)
	target, old := s.nodes[0], s.nodes[1]
	oldID := old.NodeID()
	if p, ok := target.tablePeer(oldID); !ok || p != testPeer(1) {
		t.Fatalf("before the restart the target holds %v as %q, %v", oldID, p, ok)
	}
	s.net.serve(testPeer(1), nil)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	newID := HashID([]byte("restarted"))
	restarted, err := s.startAs(testPeer(1), Config{NodeID: newID, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1,
		InitialPeers: []PeerID{testPeer(0)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Close() })
	if _, ok := target.tablePeer(oldID); ok {
		t.Error("the old node ID is still in the table after the restart")
	}
	if p, ok := target.tablePeer(newID); !ok || p != testPeer(1) {
		t.Errorf("the new node ID is held as %q, %v", p, ok)
	}
	pingAs(t, target, testPeer(1), newID) // re-announcing the same ID changes nothing
	target.mu.Lock()
	st := target.table.Stats()
	target.mu.Unlock()
	if st.NodeIDs != 1 || st.Active != 1 {
		t.Errorf("table after the restart: %+v, want one node", st)
	}
}

// tablePeer reads the routing table under the node's lock.
func (n *Node) tablePeer(id ID) (PeerID, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.table.PeerByID(id)
}

// TestFailureEvictsOnlyTheFailingPeer: a failure removes a node ID only while the table holds it
// under the peer that failed (hivemind deletes the ID whatever its peer).
func TestFailureEvictsOnlyTheFailingPeer(t *testing.T) {
	n := newTestSwarm(t, 1, nil).nodes[0]
	honest := HashID([]byte("honest"))
	pingAs(t, n, "honest-peer", honest)

	// A validating ping claiming the honest node's ID: the ping-back to the sender fails (it is not
	// served), which hivemind answers by deleting the claimed ID.
	resp, err := n.HandlePing(t.Context(), "liar", &dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{NodeId: honest.Bytes()}, Validate: true})
	if err != nil || resp.GetAvailable() {
		t.Fatalf("validating ping from an unreachable liar: %+v, %v", resp, err)
	}
	if p, ok := n.tablePeer(honest); !ok || p != "honest-peer" {
		t.Fatalf("a liar's failed ping-back evicted the honest node (held as %q, %v)", p, ok)
	}

	// The honest node moves to a new peer; its old peer's stale peer → ID entry stays (hivemind,
	// vectors/routing.json: a node ID re-added under a new peer). A failure of the old peer must not
	// evict it.
	pingAs(t, n, "new-peer", honest)
	n.updateRoutingTable(nil, "honest-peer", false)
	if p, ok := n.tablePeer(honest); !ok || p != "new-peer" {
		t.Fatalf("a failure of the node's former peer evicted it (held as %q, %v)", p, ok)
	}
	// The failing peer's own entry goes.
	n.updateRoutingTable(nil, "new-peer", false)
	if _, ok := n.tablePeer(honest); ok {
		t.Error("a failure of the peer holding the ID did not evict it")
	}
}

// packedDictionary packs a dictionary whose subkey i (msgpack of i) holds value until exps[i].
func packedDictionary(t *testing.T, value []byte, now float64, exps ...float64) []byte {
	t.Helper()
	d := NewDictionaryValue(0)
	for i, e := range exps {
		if _, err := d.Store([]byte(mp(t, i)), value, e, now); err != nil {
			t.Fatal(err)
		}
	}
	return d.Pack(now)
}

// TestStoreExpirationHorizon: inbound items expiring beyond now + MaxExpirationHorizon (+ the clock
// discrepancy) are refused one by one, in the storage and the cache, for regular values, subkeys
// and whole dictionaries; items within it are stored; a negative horizon disables the check.
func TestStoreExpirationHorizon(t *testing.T) {
	s := newTestSwarm(t, 1, nil)
	n := s.nodes[0]
	now := s.clock.Now()
	limit := now + DefaultMaxExpirationHorizon.Seconds() + MaxClockDiscrepancy
	value := []byte(mp(t, "v"))
	sub := []byte(mp(t, "sub"))
	dict := func(exps ...float64) []byte { return packedDictionary(t, value, now, exps...) }
	cases := []struct {
		name string
		it   wireItem
		want bool
	}{
		{"an hour", wireItem{tag: []byte(TagRegular), expiration: now + 3600}, true},
		{"at the limit", wireItem{tag: []byte(TagRegular), expiration: limit}, true},
		{"just beyond the limit", wireItem{tag: []byte(TagRegular), expiration: limit + 1}, false},
		{"1e300", wireItem{tag: []byte(TagRegular), expiration: 1e300}, false},
		{"1e300 in the cache", wireItem{tag: []byte(TagRegular), expiration: 1e300, inCache: true}, false},
		{"subkey 1e300", wireItem{tag: sub, expiration: 1e300}, false},
		{"subkey within", wireItem{tag: sub, expiration: now + 60}, true},
		{"dictionary within", wireItem{tag: []byte(TagDictionary), expiration: now + 60}, true},
		// The item's expiration says an hour, one subkey says 1e300: the subkeys are what is stored.
		{"dictionary with a 1e300 subkey", wireItem{tag: []byte(TagDictionary), expiration: now + 3600}, false},
	}
	var items []wireItem
	for i, c := range cases {
		it := c.it
		it.key = HashID(fmt.Appendf(nil, "horizon-%d", i))
		it.value = value
		switch c.name {
		case "dictionary within":
			it.value = dict(now+30, now+60)
		case "dictionary with a 1e300 subkey":
			it.value = dict(now+60, 1e300)
		}
		items = append(items, it)
	}
	got := storeAs(t, n, "client", items)
	for i, c := range cases {
		if i >= len(got) || got[i] != c.want {
			t.Errorf("%s: store_ok = %v, want %v", c.name, got, c.want)
		}
	}
	n.mu.Lock()
	for i, c := range cases {
		_, inStorage := n.storage.Get(items[i].key, now)
		_, inCache := n.cache.Get(items[i].key, now)
		if (inStorage || inCache) != c.want {
			t.Errorf("%s: held in storage %v, cache %v; want %v", c.name, inStorage, inCache, c.want)
		}
	}
	n.mu.Unlock()

	open := s.add(t, Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, MaxExpirationHorizon: -1})
	if got := storeAs(t, open, "client", items[3:4]); !slices.Equal(got, []bool{true}) {
		t.Errorf("with the horizon disabled a 1e300 expiration: store_ok = %v", got)
	}
}

// TestFarFutureFloodKeepsHonestRecords: a flood of records expiring in 1e300 s into a full storage
// is refused and does not evict an honest record expiring in an hour (hivemind-style storage
// evicts the earliest expirations first: hostile attack far-future-flood).
func TestFarFutureFloodKeepsHonestRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		horizon time.Duration
		kept    bool
	}{
		{name: "default horizon", kept: true},
		{name: "horizon disabled", horizon: -1, kept: false}, // what the horizon defends against
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSwarm(t, 1, func(_ int, c *Config) { c.MaxStorageEntries = 8; c.MaxExpirationHorizon = tc.horizon })
			n := s.nodes[0]
			now := s.clock.Now()
			value := []byte(mp(t, 1))
			honest := HashID([]byte("honest"))
			if got := storeAs(t, n, "client", []wireItem{{key: honest, tag: []byte(TagRegular), value: value, expiration: now + 3600}}); !slices.Equal(got, []bool{true}) {
				t.Fatalf("honest store: %v", got)
			}
			var flood []wireItem
			for i := range 32 {
				flood = append(flood, wireItem{key: HashID(fmt.Appendf(nil, "forever-%d", i)), tag: []byte(TagRegular), value: value, expiration: 1e300})
			}
			accepted := 0
			for _, ok := range storeAs(t, n, "client", flood) {
				if ok {
					accepted++
				}
			}
			n.mu.Lock()
			_, kept := n.storage.Get(honest, now)
			n.mu.Unlock()
			if kept != tc.kept {
				t.Errorf("honest record kept = %v after %d of %d far-future records were accepted; want %v", kept, accepted, len(flood), tc.kept)
			}
			if tc.kept && accepted != 0 {
				t.Errorf("%d far-future records accepted", accepted)
			}
		})
	}
}

// TestExpirationLimit: the horizon adds the clock discrepancy; a disabled horizon is no limit.
func TestExpirationLimit(t *testing.T) {
	n := &Node{cfg: Config{MaxExpirationHorizon: time.Hour}}
	if got := n.expirationLimit(100); got != 100+3600+MaxClockDiscrepancy {
		t.Errorf("limit = %v", got)
	}
	n.cfg.MaxExpirationHorizon = -1
	if got := n.expirationLimit(100); got < 1e308 {
		t.Errorf("disabled limit = %v", got)
	}
}
