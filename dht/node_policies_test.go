package dht

import (
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Ports of hivemind's tests/test_dht_node.py (replicas, caching, reuse, blacklist, edge cases;
// spec §12.2) on loopNet swarms.

func storedEntries(nodes []*Node) int {
	total := 0
	for _, n := range nodes {
		n.mu.Lock()
		total += n.storage.Len(n.now())
		n.mu.Unlock()
	}
	return total
}

// TestReplicas is test_dhtnode_replicas: a store reaches exactly NumReplicas nodes.
func TestReplicas(t *testing.T) {
	for _, replicas := range []int{1, 3, 7, 20} {
		t.Run(time.Duration(replicas).String(), func(t *testing.T) {
			s := newTestSwarm(t, 20, func(_ int, cfg *Config) { cfg.NumReplicas = replicas })
			ctx := t.Context()
			now := s.clock.Now()
			you := s.nodes[replicas%20]
			if r, err := you.Store(ctx, StoreItem{Key: MustKey("key1"), Value: "foo", Expiration: now + 999}); err != nil || !r.Stored {
				t.Fatalf("store key1: %+v %v", r, err)
			}
			key1 := storedEntries(s.nodes)
			if key1 != replicas {
				t.Errorf("key1 stored at %d nodes, want %d", key1, replicas)
			}
			if r, err := you.Store(ctx, StoreItem{Key: MustKey("key2"), Value: "bar", Expiration: now + 999}); err != nil || !r.Stored {
				t.Fatalf("store key2: %+v %v", r, err)
			}
			total := storedEntries(s.nodes)
			if total-key1 != replicas {
				t.Errorf("key2 stored at %d nodes, want %d", total-key1, replicas)
			}
			r, err := you.Store(ctx, StoreItem{Key: MustKey("key2"), Value: "baz", Expiration: now + 1000})
			if err != nil || !r.Stored {
				t.Fatalf("overwrite key2: %+v %v", r, err)
			}
			if got := storedEntries(s.nodes); got != total {
				t.Errorf("overwriting changed the total from %d to %d", total, got)
			}
			accepted := r.Accepted()
			if len(r.Replicas) != replicas || accepted != replicas {
				t.Errorf("%d replica answers (%d accepted), want %d", len(r.Replicas), accepted, replicas)
			}
		})
	}
}

// TestCaching is test_dhtnode_caching with T = 1 s of virtual time.
func TestCaching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const T = 1.0
		sleep := func(k float64) { time.Sleep(time.Duration(k * T * float64(time.Second))) }
		s := &testSwarm{net: newLoopNet()}
		base := Config{Logger: quietLogger(), RefreshInterval: -1, CacheRefreshBeforeExpiry: 5 * time.Second, DisableGetReuse: true}
		node2 := s.add(t, base)
		cfg1 := base
		cfg1.ClientMode = true
		cfg1.InitialPeers = []PeerID{node2.PeerID()}
		node1 := s.add(t, cfg1)
		ctx := t.Context()
		now := func() float64 { return node1.now() }
		store := func(key string, exp float64) {
			t.Helper()
			if r, err := node2.Store(ctx, StoreItem{Key: MustKey(key), Value: []any{123, "value"}, Expiration: exp}); err != nil || !r.Stored {
				t.Fatalf("store %s: %+v %v", key, r, err)
			}
		}
		get := func(keys ...string) {
			t.Helper()
			ks := make([]Key, len(keys))
			for i, k := range keys {
				ks[i] = MustKey(k)
			}
			if _, err := node1.GetMany(ctx, ks, GetOptions{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		check := func(step string, cache, queue int) {
			t.Helper()
			node1.mu.Lock()
			gotCache, gotQueue := node1.cache.Len(node1.now()), node1.refreshQ.Len(0)
			node1.mu.Unlock()
			if (cache >= 0 && gotCache != cache) || gotQueue != queue {
				t.Errorf("%s: cache %d, refresh queue %d; want %d, %d", step, gotCache, gotQueue, cache, queue)
			}
		}

		store("k", now()+7*T)
		store("k2", now()+7*T)
		store("k3", now()+15*T)
		get("k", "k2", "k3", "k4")
		check("first get", 3, 0)
		get("k", "k2", "k3", "k4")
		check("second get", -1, 3)

		store("k", now()+12*T)
		sleep(4)
		get("k")
		sleep(1)
		check("after re-store", 3, 2)
		sleep(3)
		check("+3T", -1, 1)
		sleep(5)
		check("+5T", -1, 0)
		sleep(5)
		check("+5T again", -1, 0)

		store("k", now()+10*T)
		get("k")
		sleep(1)
		check("fetched", -1, 0)
		get("k")
		sleep(1)
		check("used from cache", -1, 1)
		sleep(5)
		check("refreshed", -1, 0)
	})
}

// TestReuseGet is test_dhtnode_reuse_get: concurrent GETs of a key share one result.
func TestReuseGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestSwarm(t, 10, func(_ int, cfg *Config) { cfg.ParallelRPC = 256 })
		s.net.latency = 10 * time.Millisecond
		ctx := t.Context()
		now := s.clock.Now()
		for k, v := range map[string]int{"k1": 123, "k2": 567} {
			if r, err := s.nodes[3].Store(ctx, StoreItem{Key: MustKey(k), Value: v, Expiration: now + 999}); err != nil || !r.Stored {
				t.Fatalf("store %s: %+v %v", k, r, err)
			}
		}
		you := s.nodes[8]
		// Drop local copies so that the GETs go to the network and stay pending for a while.
		for _, k := range []string{"k1", "k2"} {
			you.mu.Lock()
			you.storage.Delete(MustKey(k).ID())
			you.cache.Delete(MustKey(k).ID())
			you.mu.Unlock()
		}
		pending := func(key string) int {
			you.mu.Lock()
			defer you.mu.Unlock()
			return len(you.pending[MustKey(key).ID()])
		}
		type got struct{ rs []*Result }
		start := func(keys ...string) chan got {
			ch := make(chan got, 1)
			ks := make([]Key, len(keys))
			for i, k := range keys {
				ks[i] = MustKey(k)
			}
			go func() {
				rs, err := you.GetMany(ctx, ks, GetOptions{})
				if err != nil {
					t.Error(err)
				}
				ch <- got{rs}
			}()
			return ch
		}
		f1 := start("k1", "k2")
		time.Sleep(time.Millisecond)
		if pending("k1") != 1 || pending("k2") != 1 {
			t.Errorf("pending k1=%d k2=%d, want 1, 1", pending("k1"), pending("k2"))
		}
		f2 := start("k2", "k3")
		time.Sleep(time.Millisecond)
		if pending("k2") != 2 {
			t.Errorf("pending k2=%d, want 2", pending("k2"))
		}
		r1, r2 := <-f1, <-f2
		f3 := start("k3")
		time.Sleep(time.Millisecond)
		if pending("k1") != 0 || pending("k2") != 0 || pending("k3") != 1 {
			t.Errorf("pending k1=%d k2=%d k3=%d, want 0, 0, 1", pending("k1"), pending("k2"), pending("k3"))
		}
		r3 := <-f3
		mustEqualValue(t, "k1", r1.rs[0].Value, int64(123))
		mustEqualValue(t, "k2 (first)", r1.rs[1].Value, int64(567))
		mustEqualValue(t, "k2 (second)", r2.rs[0].Value, int64(567))
		if r2.rs[1] != nil || r3.rs[0] != nil {
			t.Errorf("k3 found: %v %v", r2.rs[1], r3.rs[0])
		}
		s.net.latency = 0
	})
}

// TestBlacklist is test_dhtnode_blacklist.
func TestBlacklist(t *testing.T) {
	s := newTestSwarm(t, 4, func(_ int, cfg *Config) { cfg.BlacklistTime = 999 * time.Second })
	node1, node2, node3, node4 := s.nodes[0], s.nodes[1], s.nodes[2], s.nodes[3]
	ctx := t.Context()
	now := s.clock.Now()
	if r, err := node2.Store(ctx, StoreItem{Key: MustKey("abc"), Value: 123, Expiration: now + 99}); err != nil || !r.Stored {
		t.Fatalf("store abc: %+v %v", r, err)
	}
	if b := node2.BannedPeers(); len(b) != 0 {
		t.Errorf("banned before any failure: %v", b)
	}
	s.stop(2)
	s.stop(3)
	if r, err := node2.Store(ctx, StoreItem{Key: MustKey("def"), Value: 456, Expiration: now + 99}); err != nil || !r.Stored {
		t.Fatalf("store def: %+v %v", r, err)
	}
	banned := node2.BannedPeers()
	slices.Sort(banned)
	if !slices.Equal(banned, []PeerID{node3.PeerID(), node4.PeerID()}) {
		t.Errorf("node2 bans %q, want node3 and node4", banned)
	}
	if r, err := node1.Get(ctx, MustKey("abc"), GetOptions{Latest: true}); err != nil || r == nil {
		t.Fatalf("get abc: %v %v", r, err)
	}
	if !slices.Contains(node1.BannedPeers(), node3.PeerID()) {
		t.Errorf("node1 did not ban node3: %q", node1.BannedPeers())
	}
	if r, err := node1.Get(ctx, MustKey("abc"), GetOptions{Latest: true}); err != nil || r == nil {
		t.Fatalf("get abc again: %v %v", r, err)
	}
	if slices.Contains(node1.BannedPeers(), node2.PeerID()) {
		t.Errorf("node1 banned node2, which answers")
	}
}

// TestEdgeCases is test_dhtnode_edge_cases: keys, subkeys and values of many types (294 stores).
func TestEdgeCases(t *testing.T) {
	s := newTestSwarm(t, 4, func(_ int, cfg *Config) { cfg.ParallelRPC = 4 })
	rng := rand.New(rand.NewPCG(4, 4))
	ctx := t.Context()
	subkeys := []any{0, "", false, true, "abyrvalg", 4555}
	keys := append(slices.Clone(subkeys), msgpack.Tuple{})
	values := append(slices.Clone(subkeys), []any{})
	for _, key := range keys {
		for _, subkey := range subkeys {
			for _, value := range values {
				s.clock.Set(s.clock.Now() + 0.001)
				k := MustKey(key)
				_, err := s.nodes[rng.IntN(4)].Store(ctx, StoreItem{Key: k, Subkey: subkey, Value: value, Expiration: s.clock.Now() + 999})
				if err != nil {
					t.Fatal(err)
				}
				r, err := s.nodes[rng.IntN(4)].Get(ctx, k, GetOptions{Latest: true})
				if err != nil || r == nil || !r.IsDictionary {
					t.Fatalf("get %v: %+v %v", key, r, err)
				}
				e, ok := dictOf(r)[mp(t, subkey)]
				if !ok {
					t.Fatalf("key %v: subkey %v missing", key, subkey)
				}
				if !msgpack.Equal(decodeRaw(t, e.Value), value) {
					t.Fatalf("key %v subkey %v = %v, want %v", key, subkey, decodeRaw(t, e.Value), value)
				}
			}
		}
	}
}

// stop takes node i off the network (hivemind's shutdown of one peer in a test).
func (s *testSwarm) stop(i int) {
	s.net.serve(s.nodes[i].PeerID(), nil)
	_ = s.nodes[i].Close()
}
