package dht

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/synctest"
)

// allKeys returns every key of s, in iteration order.
func allKeys(s *LocalStorage) []ID {
	keys, _, _ := s.keysAfter(nil, keyCursor{}, 1<<30)
	return keys
}

// oracleHandoff is hivemind's selection as the node made it under its lock before: every record of
// the storage, judged against the routing table as it is before newNode is added.
func oracleHandoff(n *Node, newNode ID) []ID {
	var out []ID
	for _, key := range allKeys(n.storage) {
		neighbors := n.table.NearestNeighbors(key, n.cfg.NumReplicas, &n.id)
		if len(neighbors) > 0 {
			nearest := neighbors[0].ID.Xor(key)
			farthest := neighbors[len(neighbors)-1].ID.Xor(key)
			if !newNode.Xor(key).Less(farthest) || !n.id.Xor(key).Less(nearest) {
				continue
			}
		}
		out = append(out, key)
	}
	return out
}

// nearID returns a random ID sharing its first bits bits with id.
func nearID(rng *rand.Rand, id ID, bits int) ID {
	var r ID
	for i := range r {
		r[i] = byte(rng.Uint32())
	}
	return BucketInfo{Lower: id, Depth: bits}.RandomID(r)
}

// TestHandoffSelection: the batched selection outside the lock picks, for each node of a batch,
// exactly the keys hivemind's rule picks when the nodes are met one after another.
func TestHandoffSelection(t *testing.T) {
	for _, tc := range []struct{ contacts, keys, batch, replicas int }{
		{contacts: 0, keys: 50, batch: 1, replicas: 5},
		{contacts: 0, keys: 50, batch: 4, replicas: 5},
		{contacts: 3, keys: 300, batch: 2, replicas: 5},
		{contacts: 40, keys: 3000, batch: 1, replicas: 5},
		{contacts: 40, keys: 3000, batch: 8, replicas: 5},
		{contacts: 300, keys: 3000, batch: 20, replicas: 3},
	} {
		t.Run(fmt.Sprintf("%d contacts %d keys batch %d", tc.contacts, tc.keys, tc.batch), func(t *testing.T) {
			rng := rngFor(t)
			self := nearID(rng, ID{}, 0)
			n, err := New(Config{NodeID: self, Logger: quietLogger(), RefreshInterval: -1, NumReplicas: tc.replicas},
				"me", &sinkTransport{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			now := n.now()
			n.mu.Lock()
			defer n.mu.Unlock()
			for i := range tc.contacts {
				n.table.Add(nearID(rng, self, rng.IntN(12)), PeerID(fmt.Sprint("c", i)), now)
			}
			for range tc.keys {
				if _, err := n.storage.Store(nearID(rng, self, rng.IntN(24)), []byte{1}, now+100, now); err != nil {
					t.Fatal(err)
				}
			}
			var batch []Contact
			var want [][]ID
			for j := range tc.batch {
				c := Contact{ID: nearID(rng, self, rng.IntN(20)), Peer: PeerID(fmt.Sprint("new", j))}
				batch = append(batch, c)
				want = append(want, oracleHandoff(n, c.ID))
				n.table.Add(c.ID, c.Peer, now)
			}
			keys := allKeys(n.storage)
			got := n.newHandoffSelector(batch, n.table.activeView()).selectKeys(keys)
			total := 0
			for j := range batch {
				var gotKeys []ID
				for _, ki := range got[j] {
					gotKeys = append(gotKeys, keys[ki])
				}
				total += len(gotKeys)
				if !slices.Equal(gotKeys, want[j]) {
					t.Errorf("node %d: %d keys selected, hivemind's rule selects %d", j, len(gotKeys), len(want[j]))
				}
			}
			t.Logf("%d keys handed over", total)
		})
	}
}

// TestHandoffToNewNode: a node that knows nobody hands every record of its storage (not of its
// cache) to the first node it meets, dictionaries whole, in STOREs of at most MaxRequestItems.
func TestHandoffToNewNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestSwarm(t, 1, func(_ int, cfg *Config) { cfg.MaxRequestItems = 7 })
		old := s.nodes[0]
		now := s.clock.Now()
		old.mu.Lock()
		for i := range 20 {
			_, _ = old.storage.Store(HashID(fmt.Appendf(nil, "k%d", i)), dictMarshal(t, i), now+100, now)
		}
		_, _ = old.storage.StoreSubkey(HashID([]byte("dict")), dictMarshal(t, "a"), dictMarshal(t, 1), now+50, now)
		_, _ = old.storage.StoreSubkey(HashID([]byte("dict")), dictMarshal(t, "b"), dictMarshal(t, 2), now+60, now)
		_, _ = old.cache.Store(HashID([]byte("cached")), dictMarshal(t, 0), now+100, now)
		old.mu.Unlock()

		s.add(t, Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, InitialPeers: []PeerID{testPeer(0)}})
		synctest.Wait()
		newcomer := s.nodes[1]
		if got := newcomer.Stats().StoredKeys; got != 21 {
			t.Errorf("the new node stores %d keys, want 21", got)
		}
		newcomer.mu.Lock()
		d, ok := newcomer.storage.Get(HashID([]byte("dict")), now)
		_, cached := newcomer.storage.Get(HashID([]byte("cached")), now)
		newcomer.mu.Unlock()
		if !ok || len(d.Dictionary.Items(now)) != 2 || d.Expiration != now+60 {
			t.Errorf("dictionary handed over as %+v", d)
		}
		if cached {
			t.Error("a cached record was handed over")
		}
		var stores int
		for _, c := range s.net.takeCalls() {
			if c.kind == rpcStore && c.from == testPeer(0) {
				stores++
			}
		}
		if stores != 3 {
			t.Errorf("%d STOREs for 21 records at 7 per request, want 3", stores)
		}
	})
}

// TestHandoffStoresFitMaxStoreBatchBytes: large records are handed over in STOREs of about
// maxStoreBatchBytes at most (a peer refuses a request over its frame cap whole, and the new node
// would get none of them), each record whole, and the new node receives every one.
func TestHandoffStoresFitMaxStoreBatchBytes(t *testing.T) {
	const records, valueSize = 12, 300 << 10 // 3.6 MB in all, far below MaxRequestItems records
	synctest.Test(t, func(t *testing.T) {
		s := newTestSwarm(t, 1, nil)
		old := s.nodes[0]
		now := s.clock.Now()
		old.mu.Lock()
		for i := range records {
			_, _ = old.storage.Store(HashID(fmt.Appendf(nil, "large-%d", i)), dictMarshal(t, make([]byte, valueSize)), now+100, now)
		}
		old.mu.Unlock()

		s.add(t, Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, InitialPeers: []PeerID{testPeer(0)}})
		synctest.Wait()
		if got := s.nodes[1].Stats().StoredKeys; got != records {
			t.Errorf("the new node stores %d keys, want %d", got, records)
		}
		stores := 0
		for _, c := range s.net.takeCalls() {
			if c.kind != rpcStore || c.from != testPeer(0) {
				continue
			}
			stores++
			if len(c.request) > maxStoreBatchBytes+1024 {
				t.Errorf("a STORE of %d bytes, the bound is about %d", len(c.request), maxStoreBatchBytes)
			}
		}
		if stores < 2 {
			t.Errorf("%d STOREs for %d records of %d bytes", stores, records, valueSize)
		}
	})
}

// TestKeysAfter: a walk in steps while the storage changes returns every record that stays, once,
// and never one removed before it was reached.
func TestKeysAfter(t *testing.T) {
	s := NewLocalStorage(LocalStorageConfig{MaxEntries: -1})
	key := func(i int) ID { return HashID(fmt.Appendf(nil, "%d", i)) }
	for i := range 100 {
		_, _ = s.Store(key(i), []byte{1}, 1000+float64(i), 0)
	}
	var got []ID
	var cursor keyCursor
	step := 0
	for done := false; !done; step++ {
		got, cursor, done = s.keysAfter(got, cursor, 7)
		switch step {
		case 0:
			s.Delete(key(6)) // the cursor's own record
			s.Delete(key(7)) // and the next one
			s.Delete(key(3)) // already returned
		case 1:
			_, _ = s.Store(key(20), []byte{2}, 5000, 0) // replaced in place: returned once
			s.Delete(key(21))
			_, _ = s.Store(key(21), []byte{2}, 5000, 0) // removed and stored again: moves to the end
			_, _ = s.Store(key(100), []byte{2}, 5000, 0)
		case 2:
			s.RemoveOutdated(1030.5) // keys 0..30 expire, the cursor's record among them
		}
	}
	want := []ID{}
	for i := range 7 {
		want = append(want, key(i))
	}
	for i := 8; i <= 13; i++ {
		want = append(want, key(i))
	}
	for i := 31; i <= 99; i++ {
		want = append(want, key(i))
	}
	want = append(want, key(21), key(100))
	// Keys 14..20 were returned in step 1; 3 was returned before its removal.
	for i := 14; i <= 20; i++ {
		want = slices.Insert(want, 13+i-14, key(i))
	}
	if !slices.Equal(got, want) {
		t.Errorf("walk returned %d keys, want %d:\ngot  %x\nwant %x", len(got), len(want), got, want)
	}
}
