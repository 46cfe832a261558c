package dht

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/test/vectors"
	"google.golang.org/protobuf/proto"
)

// Fuzz targets for every entry point that reads a peer's bytes: the three handlers (request bytes
// → unmarshal → handle) and the client side of FIND (response bytes → validation, dictionaries).
// They must never panic, and memory stays bounded (small storage and request bounds).

// fuzzNode returns a node with small bounds whose outbound calls all fail at once.
func fuzzNode(f *testing.F) *Node {
	f.Helper()
	net := newLoopNet()
	net.noRecord = true
	n, err := New(Config{
		NodeID: HashID([]byte("fuzz")), Clock: &fakeClock{now: 1_700_000_000}, Logger: quietLogger(),
		RefreshInterval: -1, MaxStorageEntries: 1000, MaxStorageBytes: 1 << 20, MaxRequestItems: 256, CacheSize: 100,
	}, "fuzz", net.endpoint("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = n.Close() })
	return n
}

// protoSeeds adds every byte string of dht_proto.json: the requests and responses of its exchanges
// and ping-backs and its serialized messages, whatever the exchange. A handler fuzzer starts from all
// of them (a byte string that is not its request type is a seed of malformed input).
func protoSeeds(f *testing.F) {
	for _, b := range vectors.ByteStrings(f, "dht_proto.json") {
		f.Add(b)
	}
}

func FuzzHandlePing(f *testing.F) {
	protoSeeds(f)
	f.Add([]byte{})
	n := fuzzNode(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &dhtpb.PingRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		_, _ = n.HandlePing(t.Context(), "fuzzer", req)
	})
}

func FuzzHandleStore(f *testing.F) {
	protoSeeds(f)
	n := fuzzNode(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &dhtpb.StoreRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		resp, err := n.HandleStore(t.Context(), "fuzzer", req)
		if err == nil && len(resp.GetStoreOk()) != len(req.GetKeys()) {
			t.Fatalf("%d answers for %d items", len(resp.GetStoreOk()), len(req.GetKeys()))
		}
		if u := n.storage.Usage(); u.Entries > 1000 {
			t.Fatalf("storage over its bound: %+v", u)
		}
	})
}

func FuzzHandleFind(f *testing.F) {
	protoSeeds(f)
	n := fuzzNode(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req := &dhtpb.FindRequest{}
		if proto.Unmarshal(data, req) != nil {
			return
		}
		resp, err := n.HandleFind(t.Context(), "fuzzer", req)
		if err == nil && len(resp.GetResults()) != len(req.GetKeys()) {
			t.Fatalf("%d results for %d keys", len(resp.GetResults()), len(req.GetKeys()))
		}
	})
}

// cannedFind answers every FIND with the response bytes it holds; other calls fail.
type cannedFind struct {
	Transport
	mu   sync.Mutex
	resp []byte
}

func (c *cannedFind) set(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resp = b
}

func (c *cannedFind) Find(context.Context, PeerID, *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := &dhtpb.FindResponse{}
	if err := proto.Unmarshal(c.resp, out); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoResponse, err)
	}
	return out, nil
}

func FuzzFindResponse(f *testing.F) {
	protoSeeds(f)
	canned := &cannedFind{Transport: newLoopNet().endpoint("fuzz")}
	n, err := New(Config{
		Clock: &fakeClock{now: 1_700_000_000}, Logger: quietLogger(), RefreshInterval: -1,
	}, "fuzz", canned)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = n.Close() })
	keys := []ID{HashID([]byte("a")), HashID([]byte("b")), HashID([]byte("c"))}
	f.Fuzz(func(t *testing.T, data []byte) {
		canned.set(data)
		answers, err := n.callFind(t.Context(), "peer", keys)
		if err == nil && len(answers) != len(keys) {
			t.Fatalf("%d answers for %d keys", len(answers), len(keys))
		}
	})
}
