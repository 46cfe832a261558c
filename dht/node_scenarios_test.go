package dht

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Ports of hivemind's tests/test_dht.py::test_get_store and tests/test_dht_node.py::test_dht_node
// (spec §12.1-12.2) on a loopNet swarm.

func decodeRaw(t testing.TB, raw msgpack.Raw) any {
	t.Helper()
	v, err := msgpack.Unmarshal(raw)
	if err != nil {
		t.Fatalf("decode %x: %v", []byte(raw), err)
	}
	return v
}

func mustEqualValue(t testing.TB, what string, got msgpack.Raw, want any) {
	t.Helper()
	if !msgpack.Equal(decodeRaw(t, got), want) {
		t.Errorf("%s = %v, want %v", what, decodeRaw(t, got), want)
	}
}

// dictOf maps a dictionary result's decoded subkeys (as their msgpack bytes) to entries.
func dictOf(r *Result) map[string]DictionaryEntry {
	out := map[string]DictionaryEntry{}
	for _, e := range r.Dictionary {
		out[string(e.Subkey)] = e
	}
	return out
}

func mp(t testing.TB, v any) string {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGetStore is test_dht.py::test_get_store.
func TestGetStore(t *testing.T) {
	s := newTestSwarm(t, 10, nil)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 1))
	node1, node2 := s.nodes[rng.IntN(10)], s.nodes[rng.IntN(10)]
	now := s.clock.Now()

	store := func(n *Node, it StoreItem) {
		t.Helper()
		res, err := n.Store(ctx, it)
		if err != nil || !res.Stored {
			t.Fatalf("store %+v: %+v, %v", it, res, err)
		}
	}
	get := func(n *Node, key string, latest bool) *Result {
		t.Helper()
		r, err := n.Get(ctx, MustKey(key), GetOptions{Latest: latest})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	store(node1, StoreItem{Key: MustKey("key1"), Value: "value1", Expiration: now + 30})
	for _, n := range []*Node{node1, node2} {
		mustEqualValue(t, "key1", get(n, "key1", false).Value, "value1")
	}
	if r := get(node2, "key2", false); r != nil {
		t.Errorf("key2 = %+v, want nothing", r)
	}
	if r := get(node1, "foo", false); r != nil {
		t.Errorf("foo = %+v, want nothing", r)
	}

	store(node2, StoreItem{Key: MustKey("key1"), Value: 123, Expiration: now + 31})
	store(node2, StoreItem{Key: MustKey("key2"), Value: 456, Expiration: now + 32})
	mustEqualValue(t, "key1 latest", get(node1, "key1", true).Value, int64(123))
	mustEqualValue(t, "key2", get(node1, "key2", false).Value, int64(456))

	s.clock.Set(now + 0.5) // hivemind computes these expirations later: they are slightly newer
	store(node1, StoreItem{Key: MustKey("key2"), Subkey: "subkey1", Value: 789, Expiration: now + 32.5})
	store(node2, StoreItem{Key: MustKey("key2"), Subkey: "subkey2", Value: "pew", Expiration: now + 32.6})
	r := get(node1, "key2", true)
	if r == nil || !r.IsDictionary || len(r.Dictionary) != 2 {
		t.Fatalf("key2 latest = %+v, want a dictionary of 2 subkeys", r)
	}
	d := dictOf(r)
	mustEqualValue(t, "subkey1", d[mp(t, "subkey1")].Value, int64(789))
	mustEqualValue(t, "subkey2", d[mp(t, "subkey2")].Value, "pew")
}

// TestDHTNode is test_dht_node.py::test_dht_node: lookups against brute force, store/get with
// exact expirations, bulk operations and subkeys.
func TestDHTNode(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const size = 20
	s := newTestSwarm(t, size, func(i int, cfg *Config) {
		cfg.BucketSize, cfg.NumReplicas = 5, 3
		if i >= 5 { // the first 5 sequentially from node 0, the others from a random earlier node
			cfg.InitialPeers = []PeerID{testPeer(rng.IntN(i))}
		}
	})
	swarm := slices.Clone(s.nodes)
	me := s.add(t, Config{
		Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, ParallelRPC: 10, CacheRefreshBeforeExpiry: -1,
		InitialPeers: []PeerID{testPeer(rng.IntN(size))},
	})
	ctx := t.Context()
	find := func(n *Node, q ID, k int, excludeSelf bool) []Contact {
		t.Helper()
		res, err := n.FindNearestNodes(ctx, []ID{q}, k, excludeSelf)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}

	// 1: find self.
	if got := find(me, me.NodeID(), 1, false); len(got) != 1 || got[0] != (Contact{ID: me.NodeID(), Peer: me.PeerID()}) {
		t.Errorf("find self = %v", got)
	}
	// 2: find others exactly.
	for range 10 {
		ref := swarm[rng.IntN(size)]
		got := find(me, ref.NodeID(), 1, false)
		if len(got) != 1 || got[0] != (Contact{ID: ref.NodeID(), Peer: ref.PeerID()}) {
			t.Errorf("find %x = %v", ref.NodeID(), got)
		}
	}
	// 3: neighbours of random IDs against brute force.
	var all []ID
	for _, n := range s.nodes {
		all = append(all, n.NodeID())
	}
	var top1, jaccardSum float64
	for range 20 {
		q := randID(rng)
		k := 1 + rng.IntN(10)
		excludeSelf := rng.IntN(2) == 0
		got := find(me, q, k, excludeSelf)
		if len(got) != k {
			t.Fatalf("k=%d: %d results", k, len(got))
		}
		ids := make([]ID, len(got))
		for i, c := range got {
			ids[i] = c.ID
		}
		if excludeSelf && slices.Contains(ids, me.NodeID()) {
			t.Errorf("exclude_self result contains self")
		}
		if !slices.IsSortedFunc(ids, func(a, b ID) int { return a.Xor(q).Cmp(b.Xor(q)) }) {
			t.Errorf("results not sorted by distance")
		}
		candidates := all
		if excludeSelf {
			candidates = slices.DeleteFunc(slices.Clone(all), func(id ID) bool { return id == me.NodeID() })
		}
		ref := nearestOf(candidates, q, k)
		if ids[0] == ref[0] {
			top1++
		}
		jaccardSum += jaccard(ids, ref)
	}
	if top1/20 < 0.8 || jaccardSum/20 < 0.9 {
		t.Errorf("top-1 accuracy %.2f, Jaccard %.2f; want ≥ 0.8 and ≥ 0.9", top1/20, jaccardSum/20)
	}
	// 4: find all nodes.
	dummy := randID(rng)
	if got := find(me, dummy, size+100, false); len(got) != size+1 {
		t.Errorf("k = n+100: %d results, want %d", len(got), size+1)
	}
	// 5: a node without peers finds only itself.
	detached := s.add(t, Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1})
	if got := find(detached, dummy, 0, false); len(got) != 1 || got[0].ID != detached.NodeID() {
		t.Errorf("detached: %v", got)
	}
	if got := find(detached, dummy, 0, true); len(got) != 0 {
		t.Errorf("detached, exclude self: %v", got)
	}

	// 6: store and get with the exact expiration.
	now := s.clock.Now()
	trueTime := now + 1200
	if res, err := me.Store(ctx, StoreItem{Key: MustKey("mykey"), Value: []any{"Value", 10}, Expiration: trueTime}); err != nil || !res.Stored {
		t.Fatalf("store mykey: %+v %v", res, err)
	}
	thatGuy := s.add(t, Config{
		Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, ParallelRPC: 10, CacheRefreshBeforeExpiry: -1,
		DisableCacheLocally: true, InitialPeers: []PeerID{testPeer(rng.IntN(size))},
	})
	for _, n := range []*Node{me, thatGuy} {
		r, err := n.Get(ctx, MustKey("mykey"), GetOptions{})
		if err != nil || r == nil {
			t.Fatalf("get mykey: %v %v", r, err)
		}
		mustEqualValue(t, "mykey", r.Value, []any{"Value", int64(10)})
		if r.Expiration != trueTime {
			t.Errorf("mykey expiration %v, want %v", r.Expiration, trueTime)
		}
	}
	if r, err := detached.Get(ctx, MustKey("mykey"), GetOptions{}); err != nil || r != nil {
		t.Errorf("detached get: %v %v", r, err)
	}

	// 7: bulk store and bulk get.
	keys := []string{"foo", "bar", "baz", "zzz"}
	values := []any{int64(3), int64(2), "batman", []any{int64(1), int64(2), int64(3)}}
	var items []StoreItem
	for i, k := range keys {
		items = append(items, StoreItem{Key: MustKey(k), Value: values[i], Expiration: now + 999})
	}
	results, err := me.StoreMany(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if !r.Stored {
			t.Errorf("store_many %s failed: %+v", keys[i], r)
		}
	}
	reversed := []Key{MustKey("zzz"), MustKey("baz"), MustKey("bar"), MustKey("foo")}
	got, err := me.GetMany(ctx, reversed, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r == nil {
			t.Fatalf("get_many: key %d missing", i)
		}
		mustEqualValue(t, keys[3-i], r.Value, values[3-i])
	}

	// 8: dictionaries (subkeys).
	subStore := func(subkey string, value int, exp float64) bool {
		t.Helper()
		res, err := me.Store(ctx, StoreItem{Key: MustKey("ololo"), Subkey: subkey, Value: value, Expiration: exp})
		if err != nil {
			t.Fatal(err)
		}
		return res.Stored
	}
	checkDict := func(want map[string][2]any, exp float64, opts GetOptions) {
		t.Helper()
		for _, n := range []*Node{thatGuy, me} {
			r, err := n.Get(ctx, MustKey("ololo"), opts)
			if err != nil || r == nil || !r.IsDictionary {
				t.Fatalf("get ololo: %+v %v", r, err)
			}
			if r.Expiration != exp || len(r.Dictionary) != len(want) {
				t.Errorf("ololo: expiration %v, %d subkeys; want %v, %d", r.Expiration, len(r.Dictionary), exp, len(want))
			}
			d := dictOf(r)
			for sub, w := range want {
				e := d[mp(t, sub)]
				mustEqualValue(t, "ololo/"+sub, e.Value, w[0])
				if e.Expiration != w[1] {
					t.Errorf("ololo/%s expiration %v, want %v", sub, e.Expiration, w[1])
				}
			}
		}
	}
	if !subStore("k1", 123, now+10) || !subStore("k2", 456, now+20) {
		t.Fatal("subkey stores failed")
	}
	checkDict(map[string][2]any{"k1": {int64(123), now + 10}, "k2": {int64(456), now + 20}}, now+20, GetOptions{})
	if subStore("k2", 345, now+10) {
		t.Error("an older subkey value was accepted")
	}
	if !subStore("k2", 567, now+30) || !subStore("k3", 890, now+50) {
		t.Fatal("subkey updates failed")
	}
	// A plain GET may stop at a node caching the first version (pushed there by the GET above), so
	// the check after the updates is a latest GET, as in hivemind.
	checkDict(map[string][2]any{"k1": {int64(123), now + 10}, "k2": {int64(567), now + 30}, "k3": {int64(890), now + 50}}, now+50, GetOptions{Latest: true})
}

// TestLatestMergesReplicas: GET latest merges the dictionaries of every replica subkey by subkey
// and lets a newer regular value win, while a plain GET stops at the first replica's value
// (spec §2.6, hivemind's add_candidate).
func TestLatestMergesReplicas(t *testing.T) {
	s := newTestSwarm(t, 8, nil)
	ctx := t.Context()
	now := s.clock.Now()
	put := func(n *Node, key string, subkey any, value any, exp float64) {
		t.Helper()
		v, _ := msgpack.Marshal(value)
		n.mu.Lock()
		defer n.mu.Unlock()
		var ok bool
		var err error
		if subkey == nil {
			ok, err = n.storage.Store(MustKey(key).ID(), v, exp, now)
		} else {
			ok, err = n.storage.StoreSubkey(MustKey(key).ID(), []byte(mp(t, subkey)), v, exp, now)
		}
		if !ok || err != nil {
			t.Fatalf("put: %v %v", ok, err)
		}
	}
	put(s.nodes[1], "dict", "a", 1, now+10)
	put(s.nodes[2], "dict", "b", 2, now+20)
	put(s.nodes[3], "dict", "a", 3, now+5) // older than node 1's a
	put(s.nodes[1], "mixed", "a", 1, now+10)
	put(s.nodes[2], "mixed", nil, "regular", now+30)

	plain, err := s.nodes[6].Get(ctx, MustKey("dict"), GetOptions{})
	if err != nil || plain == nil || !plain.IsDictionary || len(plain.Dictionary) != 1 {
		t.Errorf("plain get = %+v, %v; want one replica's dictionary", plain, err)
	}
	latest, err := s.nodes[7].Get(ctx, MustKey("dict"), GetOptions{Latest: true})
	if err != nil || latest == nil || !latest.IsDictionary || latest.Expiration != now+20 {
		t.Fatalf("latest get = %+v, %v", latest, err)
	}
	d := dictOf(latest)
	if len(d) != 2 || d[mp(t, "a")].Expiration != now+10 || d[mp(t, "b")].Expiration != now+20 {
		t.Errorf("merged dictionary = %+v", latest.Dictionary)
	}
	mustEqualValue(t, "a", d[mp(t, "a")].Value, int64(1))

	mixed, err := s.nodes[7].Get(ctx, MustKey("mixed"), GetOptions{Latest: true})
	if err != nil || mixed == nil || mixed.IsDictionary || mixed.Expiration != now+30 {
		t.Fatalf("mixed latest = %+v, %v; want the newer regular value", mixed, err)
	}
	mustEqualValue(t, "mixed", mixed.Value, "regular")
}
