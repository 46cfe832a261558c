package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"google.golang.org/protobuf/proto"
)

// storeRequests returns the STOREs node from sent among calls, decoded.
func storeRequests(t *testing.T, calls []loopCall, from PeerID) []*dhtpb.StoreRequest {
	t.Helper()
	var out []*dhtpb.StoreRequest
	for _, c := range calls {
		if c.kind != rpcStore || c.from != from {
			continue
		}
		req := &dhtpb.StoreRequest{}
		if err := proto.Unmarshal(c.request, req); err != nil {
			t.Fatal(err)
		}
		out = append(out, req)
	}
	return out
}

// distinctItems returns n keys named after prefix and an item storing i under the i-th until
// expiration.
func distinctItems(prefix string, n int, expiration float64) ([]Key, []StoreItem) {
	keys := make([]Key, n)
	items := make([]StoreItem, n)
	for i := range items {
		keys[i] = MustKey(fmt.Sprintf("%s-%d", prefix, i))
		items[i] = StoreItem{Key: keys[i], Value: i, Expiration: expiration}
	}
	return keys, items
}

// TestStoreManySharesStoresPerNode: the keys of one StoreMany bound for the same node share its
// STOREs (storeBatcher), and every key still reaches its replicas and is found with its value;
// one Store sends one key per STORE, as hivemind does.
func TestStoreManySharesStoresPerNode(t *testing.T) {
	const keys = 200
	tests := []struct {
		name      string
		keys      int
		maxStores int // at most this many STOREs
	}{
		{name: "one key", keys: 1, maxStores: 4},
		{name: "many keys", keys: keys, maxStores: keys}, // unbatched: about 4 per key
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestSwarm(t, 12, nil)
				s.net.latency = time.Millisecond
				ctx := t.Context()
				now := s.clock.Now()
				writer, reader := s.nodes[5], s.nodes[9]
				keys, items := distinctItems("batch", tc.keys, now+600)
				s.net.takeCalls()
				res, err := writer.StoreMany(ctx, items)
				if err != nil {
					t.Fatal(err)
				}
				reqs := storeRequests(t, s.net.takeCalls(), writer.PeerID())
				for i, r := range res {
					if !r.Stored || r.Accepted() != writer.Config().NumReplicas {
						t.Fatalf("item %d: stored %v at %d replicas, want %d", i, r.Stored, r.Accepted(), writer.Config().NumReplicas)
					}
				}
				most := 0
				for _, r := range reqs {
					most = max(most, len(r.GetKeys()))
				}
				if len(reqs) > tc.maxStores {
					t.Errorf("%d STOREs for %d keys, want at most %d", len(reqs), tc.keys, tc.maxStores)
				}
				if tc.keys == 1 && most != 1 {
					t.Errorf("a STORE of %d keys for one key", most)
				}
				if tc.keys > 1 && most < 2 {
					t.Errorf("no STORE carried more than one key (%d STOREs)", len(reqs))
				}
				t.Logf("%d keys: %d STOREs, at most %d keys in one", tc.keys, len(reqs), most)
				got, err := reader.GetMany(ctx, keys, GetOptions{Latest: true})
				if err != nil {
					t.Fatal(err)
				}
				for i, g := range got {
					if g == nil {
						t.Fatalf("key %d not found", i)
					}
					if v, err := msgpack.Unmarshal(g.Value); err != nil || v != int64(i) {
						t.Fatalf("key %d: %v, %v", i, v, err)
					}
				}
			})
		})
	}
}

// requestKeys returns the most keys one request of kind from sent among calls carries, and how many
// such requests it sent.
func requestKeys(t *testing.T, calls []loopCall, from PeerID, kind rpcKind) (most, count int) {
	t.Helper()
	for _, c := range calls {
		if c.kind != kind || c.from != from {
			continue
		}
		var keys int
		switch kind {
		case rpcStore:
			req := &dhtpb.StoreRequest{}
			if err := proto.Unmarshal(c.request, req); err != nil {
				t.Fatal(err)
			}
			keys = len(req.GetKeys())
		case rpcFind:
			req := &dhtpb.FindRequest{}
			if err := proto.Unmarshal(c.request, req); err != nil {
				t.Fatal(err)
			}
			keys = len(req.GetKeys())
		}
		most, count = max(most, keys), count+1
	}
	return most, count
}

// TestManyKeyRequestsFitMaxRequestItems: a STORE that carries several keys and a FIND that asks
// for several never hold more items than the node's MaxRequestItems, the bound it assumes its peers
// apply to an inbound request (a peer answers a larger one with an error, which would cost every
// key in it that replica or that answer, and ban the peer and evict it from the routing table).
// Every key still reaches all its replicas and is found, and no peer is banned.
func TestManyKeyRequestsFitMaxRequestItems(t *testing.T) {
	const maxItems = 8
	tests := []struct {
		name string
		keys int
	}{
		{name: "FINDs of sqrt(keys) within the bound", keys: 49},
		{name: "FINDs of sqrt(keys) beyond the bound", keys: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestSwarm(t, 12, func(_ int, cfg *Config) { cfg.MaxRequestItems = maxItems })
				s.net.latency = time.Millisecond
				now := s.clock.Now()
				writer, reader := s.nodes[5], s.nodes[9]
				keys, items := distinctItems(fmt.Sprintf("bounded-%d", tc.keys), tc.keys, now+600)
				s.net.takeCalls()
				res, err := writer.StoreMany(t.Context(), items)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range res {
					if r.Accepted() != writer.Config().NumReplicas {
						t.Errorf("item %d: accepted by %d replicas, want %d", i, r.Accepted(), writer.Config().NumReplicas)
					}
				}
				got, err := reader.GetMany(t.Context(), keys, GetOptions{Latest: true})
				if err != nil {
					t.Fatal(err)
				}
				for i, g := range got {
					if g == nil {
						t.Errorf("key %d not found", i)
					}
				}
				calls := s.net.takeCalls()
				for _, c := range []struct {
					who  string
					from PeerID
					kind rpcKind
				}{
					{"the writer's STOREs", writer.PeerID(), rpcStore},
					{"the writer's FINDs", writer.PeerID(), rpcFind},
					{"the reader's FINDs", reader.PeerID(), rpcFind},
				} {
					most, count := requestKeys(t, calls, c.from, c.kind)
					if most > maxItems {
						t.Errorf("%s: one of %d keys, the bound is %d", c.who, most, maxItems)
					}
					if most < 2 {
						t.Errorf("%s: none of %d carried more than one key: nothing was batched", c.who, count)
					}
				}
				for _, n := range []*Node{writer, reader} {
					if banned := n.BannedPeers(); len(banned) > 0 {
						t.Errorf("%s banned %d peers", n.PeerID(), len(banned))
					}
				}
			})
		})
	}
}

// TestStoreManySplitsAKeyOverTheBounds: a key whose items one STORE cannot carry (a dictionary's
// subkeys stored in one call: more than the node's MaxRequestItems, or more than
// maxStoreBatchBytes) reaches its replicas in several STOREs, none over the bounds. Sent whole, the
// STORE was refused by every replica (the peers apply the same MaxRequestItems; the p2p layer caps
// a request at 4 MiB): no item was stored anywhere but locally, and each replica was evicted from
// the routing table. Every subkey is accepted by every replica and found by another node.
func TestStoreManySplitsAKeyOverTheBounds(t *testing.T) {
	tests := []struct {
		name      string
		maxItems  int // the swarm's MaxRequestItems; 0: the default
		subkeys   int
		valueSize int
	}{
		{name: "more items than MaxRequestItems", maxItems: 8, subkeys: 20, valueSize: 8},
		// 4.9 MB in all: whole, over the 4 MiB frame cap of a peer's p2p layer.
		{name: "more bytes than maxStoreBatchBytes", subkeys: 16, valueSize: 300 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestSwarm(t, 12, func(_ int, cfg *Config) { cfg.MaxRequestItems = tc.maxItems })
				s.net.latency = time.Millisecond
				now := s.clock.Now()
				writer, reader := s.nodes[5], s.nodes[9]
				maxItems := writer.Config().MaxRequestItems
				key := MustKey("a dictionary of many subkeys")
				items := make([]StoreItem, tc.subkeys)
				for i := range items {
					items[i] = StoreItem{Key: key, Subkey: int64(i), Value: make([]byte, tc.valueSize), Expiration: now + 600}
				}
				tableBefore := len(writer.RoutingTablePeers())
				s.net.takeCalls()
				res, err := writer.StoreMany(t.Context(), items)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range res {
					if r.Accepted() != writer.Config().NumReplicas {
						t.Errorf("subkey %d: accepted by %d replicas, want %d", i, r.Accepted(), writer.Config().NumReplicas)
					}
				}
				calls := s.net.takeCalls()
				most, count := requestKeys(t, calls, writer.PeerID(), rpcStore)
				if most > maxItems {
					t.Errorf("a STORE of %d items, the bound is %d", most, maxItems)
				}
				largest := 0
				for _, c := range calls {
					if c.kind == rpcStore && c.from == writer.PeerID() {
						largest = max(largest, len(c.request))
					}
				}
				if largest > maxStoreBatchBytes+1024 {
					t.Errorf("a STORE of %d bytes, the bound is about %d", largest, maxStoreBatchBytes)
				}
				t.Logf("%d subkeys: %d STOREs, at most %d items and %d bytes in one", tc.subkeys, count, most, largest)
				if after := len(writer.RoutingTablePeers()); after < tableBefore {
					t.Errorf("the writer's routing table lost %d peers", tableBefore-after)
				}
				got, err := reader.Get(t.Context(), key, GetOptions{Latest: true})
				if err != nil {
					t.Fatal(err)
				}
				if got == nil || !got.IsDictionary || len(got.Dictionary) != tc.subkeys {
					t.Fatalf("found %+v, want a dictionary of %d subkeys", got, tc.subkeys)
				}
			})
		})
	}
}

// TestSplitStoreItems: a key's items are cut, in order, into parts within both bounds; an item
// over the byte bound is a part alone.
func TestSplitStoreItems(t *testing.T) {
	item := func(size int) wireItem { return wireItem{tag: []byte(TagRegular), value: make([]byte, size)} }
	big := maxStoreBatchBytes / 3 // two fit with their overhead, three do not
	tests := []struct {
		name     string
		sizes    []int
		maxItems int
		want     []int // the parts' lengths
	}{
		{name: "within the bounds", sizes: []int{1, 1, 1}, maxItems: 3, want: []int{3}},
		{name: "by count", sizes: []int{1, 1, 1, 1, 1, 1, 1}, maxItems: 3, want: []int{3, 3, 1}},
		{name: "by bytes", sizes: []int{big, big, big, big, big}, maxItems: 100, want: []int{2, 2, 1}},
		{name: "an item over the byte bound alone", sizes: []int{1, 2 * maxStoreBatchBytes, 1}, maxItems: 100, want: []int{1, 1, 1}},
		{name: "one item", sizes: []int{1}, maxItems: 1, want: []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items := make([]wireItem, len(tc.sizes))
			for i, size := range tc.sizes {
				items[i] = item(size)
				items[i].expiration = float64(i) // to check the order
			}
			parts := splitStoreItems(items, tc.maxItems)
			var lens []int
			var joined []wireItem
			for _, p := range parts {
				lens = append(lens, len(p))
				joined = append(joined, p...)
			}
			if !slices.Equal(lens, tc.want) {
				t.Errorf("parts of %v items, want %v", lens, tc.want)
			}
			for i, it := range joined {
				if it.expiration != float64(i) {
					t.Fatalf("item %d of the parts is item %v", i, it.expiration)
				}
			}
		})
	}
}

// TestGetManySharesCachePushes: the values one GetMany found are pushed to the nearest nodes
// (cache_nearest) in STOREs shared per node, each item marked in_cache; a single Get pushes one
// key in one STORE, as hivemind does.
func TestGetManySharesCachePushes(t *testing.T) {
	tests := []struct {
		name string
		keys int
	}{
		{name: "one key", keys: 1},
		{name: "many keys", keys: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newTestSwarm(t, 12, func(i int, cfg *Config) { cfg.NumReplicas = 3 })
				s.net.latency = time.Millisecond
				ctx := t.Context()
				now := s.clock.Now()
				writer, reader := s.nodes[5], s.nodes[9]
				keys, items := distinctItems(fmt.Sprintf("push-%d", tc.keys), tc.keys, now+600)
				if _, err := writer.StoreMany(ctx, items); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second) // let the writer's background work end
				s.net.takeCalls()
				got, err := reader.GetMany(ctx, keys, GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for i, g := range got {
					if g == nil {
						t.Fatalf("key %d not found", i)
					}
				}
				time.Sleep(time.Second) // the pushes are sent in the background
				pushes := storeRequests(t, s.net.takeCalls(), reader.PeerID())
				pushed := 0
				for _, r := range pushes {
					for _, c := range r.GetInCache() {
						if !c {
							t.Fatalf("a push not marked in_cache: %v", r.GetInCache())
						}
					}
					pushed += len(r.GetKeys())
				}
				if tc.keys == 1 && (len(pushes) != 1 || pushed != 1) {
					t.Errorf("one key found remotely: %d keys pushed in %d STOREs, want 1 in 1", pushed, len(pushes))
				}
				if tc.keys > 1 && (pushed < tc.keys/4 || len(pushes) >= pushed) {
					t.Errorf("%d keys pushed in %d STOREs: want many keys, in fewer STOREs", pushed, len(pushes))
				}
				t.Logf("%d keys: %d pushed in %d STOREs", tc.keys, pushed, len(pushes))
			})
		})
	}
}

// TestStoreJoin: the answers to the parts of one key's items join into one: the oks in item order
// when every part was answered, else the first error and no oks; done is called once, after the
// last part, with the deepest round.
func TestStoreJoin(t *testing.T) {
	failed := fmt.Errorf("%w: part refused", ErrNoResponse)
	tests := []struct {
		name    string
		answers []storeReply // by part of 2 items, in the order they arrive
		offsets []int
		wantOks []bool
		wantErr error
	}{
		{name: "every part answered, in order", offsets: []int{0, 2, 4},
			answers: []storeReply{{oks: []bool{true, false}, round: 1}, {oks: []bool{true, true}, round: 2}, {oks: []bool{false}, round: 2}},
			wantOks: []bool{true, false, true, true, false}},
		{name: "every part answered, out of order", offsets: []int{4, 0, 2},
			answers: []storeReply{{oks: []bool{true}, round: 3}, {oks: []bool{false, true}, round: 1}, {oks: []bool{true, false}, round: 2}},
			wantOks: []bool{false, true, true, false, true}},
		{name: "one part failed", offsets: []int{0, 2, 4},
			answers: []storeReply{{oks: []bool{true, true}, round: 1}, {err: failed, round: 2}, {oks: []bool{true}, round: 1}},
			wantErr: failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []storeReply
			j := &storeJoin{reply: storeReply{oks: make([]bool, 5)}, left: len(tc.answers),
				done: func(r storeReply) { got = append(got, r) }}
			for i, a := range tc.answers {
				if len(got) != 0 {
					t.Fatalf("done called after %d of %d parts", i, len(tc.answers))
				}
				j.add(tc.offsets[i], a)
			}
			if len(got) != 1 {
				t.Fatalf("done called %d times, want once", len(got))
			}
			r := got[0]
			if !errors.Is(r.err, tc.wantErr) || (tc.wantErr == nil) != (r.err == nil) {
				t.Errorf("err %v, want %v", r.err, tc.wantErr)
			}
			if !slices.Equal(r.oks, tc.wantOks) {
				t.Errorf("oks %v, want %v", r.oks, tc.wantOks)
			}
			wantRound := 0
			for _, a := range tc.answers {
				wantRound = max(wantRound, a.round)
			}
			if r.round != wantRound {
				t.Errorf("round %d, want %d", r.round, wantRound)
			}
		})
	}
}

// gatedStores serves a node but holds every STORE until gate is closed.
type gatedStores struct {
	Handler
	gate chan struct{}
}

func (g gatedStores) HandleStore(ctx context.Context, from PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Handler.HandleStore(ctx, from, req)
}

// TestPushBatcherSharedByTheNode: the node's push batcher coalesces the pushes of concurrent
// searches bound for one peer: while a STORE to it is in flight, the pushes that follow wait and
// leave together (MaxRequestItems at a time); past maxQueuedPushStores full STOREs waiting, a
// push is dropped with errPushDropped; once the peer's queue is empty it is forgotten.
func TestPushBatcherSharedByTheNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxItems = 2
		s := newTestSwarm(t, 2, func(i int, cfg *Config) {
			if i == 0 {
				cfg.MaxRequestItems = maxItems
			}
		})
		pusher, target := s.nodes[0], s.nodes[1]
		gate := make(chan struct{})
		s.net.serve(target.PeerID(), gatedStores{Handler: target, gate: gate})
		s.net.takeCalls()

		var (
			mu      sync.Mutex
			answers []storeReply
		)
		push := func(i int) {
			item := wireItem{key: HashID(fmt.Appendf(nil, "pushed-%d", i)), tag: []byte(TagRegular), value: []byte{0xc3},
				expiration: s.clock.Now() + 600, inCache: true}
			pusher.pushes.store(target.PeerID(), []wireItem{item}, 0, func(r storeReply) {
				mu.Lock()
				answers = append(answers, r)
				mu.Unlock()
			})
		}
		push(0) // sent at once, held at the target
		synctest.Wait()
		waiting := maxQueuedPushStores * maxItems
		for i := range waiting + 1 { // the last one over the bound
			push(1 + i)
		}
		synctest.Wait()
		mu.Lock()
		if len(answers) != 1 || !errors.Is(answers[0].err, errPushDropped) {
			t.Fatalf("answers while the first STORE is held: %+v, want only the push over the bound, dropped", answers)
		}
		mu.Unlock()

		close(gate)
		synctest.Wait()
		stores := storeRequests(t, s.net.takeCalls(), pusher.PeerID())
		if want := 1 + waiting/maxItems; len(stores) != want {
			t.Errorf("%d STOREs, want %d: the first, then the %d waiting pushes %d at a time", len(stores), want, waiting, maxItems)
		}
		for i, r := range stores[1:] {
			if len(r.GetKeys()) != maxItems {
				t.Errorf("STORE %d carries %d keys, want %d", i+1, len(r.GetKeys()), maxItems)
			}
		}
		mu.Lock()
		stored := 0
		for _, r := range answers {
			if r.err == nil && len(r.oks) == 1 && r.oks[0] {
				stored++
			}
		}
		mu.Unlock()
		if stored != 1+waiting {
			t.Errorf("%d pushes stored, want %d", stored, 1+waiting)
		}
		pusher.pushes.mu.Lock()
		left := len(pusher.pushes.peers)
		pusher.pushes.mu.Unlock()
		if left != 0 {
			t.Errorf("the push batcher still holds %d peer queues after every push was answered", left)
		}
	})
}
