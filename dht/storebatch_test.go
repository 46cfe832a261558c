package dht

import (
	"fmt"
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

// TestStoreManySharesStoresPerNode: the keys of one StoreMany bound for the same node share its
// STOREs (storeBatcher), and every key still reaches its replicas and is found with its value;
// one Store sends one key per STORE, as hivemind does.
func TestStoreManySharesStoresPerNode(t *testing.T) {
	const keys = 200
	tests := []struct {
		name         string
		keys         int
		maxStores    int // at most this many STOREs
		wantBatching bool
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
				items := make([]StoreItem, tc.keys)
				for i := range items {
					items[i] = StoreItem{Key: MustKey(fmt.Sprintf("batch-%d", i)), Value: i, Expiration: now + 600}
				}
				s.net.takeCalls()
				res, err := writer.StoreMany(ctx, items)
				if err != nil {
					t.Fatal(err)
				}
				reqs := storeRequests(t, s.net.takeCalls(), writer.PeerID())
				for i, r := range res {
					accepted := 0
					for _, rep := range r.Replicas {
						if rep.Accepted {
							accepted++
						}
					}
					if !r.Stored || accepted != writer.Config().NumReplicas {
						t.Fatalf("item %d: stored %v at %d replicas, want %d", i, r.Stored, accepted, writer.Config().NumReplicas)
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
				keys := make([]Key, len(items))
				for i, it := range items {
					keys[i] = it.Key
				}
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
