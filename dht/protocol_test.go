package dht

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// TestDHTProtocol is test_dht_protocol.py::test_dht_protocol: two listeners, then a caller in
// client mode and in full mode.
func TestDHTProtocol(t *testing.T) {
	s := newTestSwarm(t, 2, func(_ int, cfg *Config) { cfg.NumReplicas = 3 })
	peer1, peer2 := s.nodes[0], s.nodes[1]
	ctx := t.Context()
	for _, clientMode := range []bool{true, false} {
		name := "full"
		if clientMode {
			name = "client mode"
		}
		t.Run(name, func(t *testing.T) {
			p := s.add(t, Config{ClientMode: clientMode, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, NumReplicas: 3})
			rng := rngFor(t)
			if id, err := p.callPing(ctx, peer1.PeerID(), false, true); err != nil || id != peer1.NodeID() {
				t.Fatalf("ping peer1 = %x, %v", id, err)
			}
			key := randID(rng)
			value, _ := msgpack.Marshal([]any{0.5, msgpack.MapOf("ololo", "pyshpysh")})
			exp := s.clock.Now() + 1e3
			oks, err := p.callStore(ctx, peer1.PeerID(), []wireItem{{key: key, tag: []byte(TagRegular), value: value, expiration: exp}})
			if err != nil || !slices.Equal(oks, []bool{true}) {
				t.Fatalf("store = %v, %v", oks, err)
			}
			ans, err := p.callFind(ctx, peer1.PeerID(), []ID{key})
			if err != nil || ans[0].value == nil || string(ans[0].value.regular) != string(value) || ans[0].value.expiration != exp {
				t.Fatalf("find at peer1 = %+v, %v", ans, err)
			}
			if n := ans[0].nearest; len(n) == 0 || n[0] != (Contact{ID: peer2.NodeID(), Peer: peer2.PeerID()}) {
				t.Errorf("peer1's first neighbour = %v, want peer2", n)
			}
			dummy := randID(rng)
			ans, err = p.callFind(ctx, peer2.PeerID(), []ID{dummy})
			if err != nil || ans[0].value != nil {
				t.Fatalf("find dummy at peer2 = %+v, %v", ans, err)
			}
			if n := ans[0].nearest; len(n) == 0 || n[0] != (Contact{ID: peer1.NodeID(), Peer: peer1.PeerID()}) {
				t.Errorf("peer2's first neighbour = %v, want peer1", n)
			}
			if _, err := p.callFind(ctx, "fakeid", []ID{key}); !errors.Is(err, ErrNoResponse) {
				t.Errorf("find at a fake peer: %v", err)
			}
			nested := randID(rng)
			v1, _ := msgpack.Marshal([]any{0.25, msgpack.MapOf("ololo", "pyshpysh")})
			v2, _ := msgpack.Marshal("abacaba")
			for _, it := range []wireItem{
				{key: nested, tag: []byte(mp(t, "foo")), value: v1, expiration: exp},
				{key: nested, tag: []byte(mp(t, "bar")), value: v2, expiration: exp + 5},
			} {
				if oks, err := p.callStore(ctx, peer1.PeerID(), []wireItem{it}); err != nil || !oks[0] {
					t.Fatalf("subkey store: %v %v", oks, err)
				}
			}
			ans, err = p.callFind(ctx, peer1.PeerID(), []ID{nested})
			if err != nil || ans[0].value == nil || ans[0].value.dict == nil {
				t.Fatalf("find nested = %+v, %v", ans, err)
			}
			d := ans[0].value.dict
			foo, okFoo := d.Get([]byte(mp(t, "foo")), s.clock.Now())
			bar, okBar := d.Get([]byte(mp(t, "bar")), s.clock.Now())
			if d.Len(s.clock.Now()) != 2 || ans[0].value.expiration != exp+5 || !okFoo || !okBar ||
				string(foo.Value) != string(v1) || foo.Expiration != exp || string(bar.Value) != string(v2) || bar.Expiration != exp+5 {
				t.Errorf("nested = %d subkeys, exp %v; foo %+v bar %+v", d.Len(s.clock.Now()), ans[0].value.expiration, foo, bar)
			}
		})
	}
}

// TestEmptyTable is test_dht_protocol.py::test_empty_table.
func TestEmptyTable(t *testing.T) {
	s := newTestSwarm(t, 1, nil)
	peer := s.nodes[0]
	p := s.add(t, Config{ClientMode: true, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1})
	ctx := t.Context()
	key := randID(rngFor(t))
	value, _ := msgpack.Marshal([]any{0.5})
	exp := s.clock.Now() + 1e3
	ans, err := p.callFind(ctx, peer.PeerID(), []ID{key})
	if err != nil || ans[0].value != nil || len(ans[0].nearest) != 0 {
		t.Fatalf("find = %+v, %v", ans, err)
	}
	if oks, err := p.callStore(ctx, peer.PeerID(), []wireItem{{key: key, tag: []byte(TagRegular), value: value, expiration: exp}}); err != nil || !oks[0] {
		t.Fatalf("store = %v, %v", oks, err)
	}
	ans, err = p.callFind(ctx, peer.PeerID(), []ID{key})
	if err != nil || ans[0].value == nil || len(ans[0].nearest) != 0 || ans[0].value.expiration != exp {
		t.Fatalf("find after store = %+v, %v", ans, err)
	}
	if id, err := p.callPing(ctx, peer.PeerID(), false, true); err != nil || id != peer.NodeID() {
		t.Errorf("ping = %x, %v", id, err)
	}
	if _, err := p.callPing(ctx, "fakeid", false, true); !errors.Is(err, ErrNoResponse) {
		t.Errorf("ping a fake peer: %v", err)
	}
}

// skewedHandler answers pings with a clock offset and, optionally, never confirms reachability.
type skewedHandler struct {
	Handler
	offset      float64
	unreachable bool
}

func (h skewedHandler) HandlePing(ctx context.Context, from PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	resp, err := h.Handler.HandlePing(ctx, from, req)
	if err != nil {
		return nil, err
	}
	if resp.DhtTime != 0 {
		resp.DhtTime += h.offset
	}
	if h.unreachable {
		resp.Available = false
	}
	return resp, nil
}

// TestPingValidation: the validating ping (spec §3.3): the peer must reach us back, and its clock
// must lie within ±3 s of our request's round trip; strict bootstrap fails, lenient warns.
func TestPingValidation(t *testing.T) {
	tests := []struct {
		name        string
		offset      float64
		unreachable bool
		clientMode  bool
		lenient     bool
		wantErr     error
	}{
		{name: "in sync", offset: 0},
		{name: "2.9 s ahead", offset: 2.9},
		{name: "2.9 s behind", offset: -2.9},
		{name: "3.5 s ahead", offset: 3.5, wantErr: ErrValidation},
		{name: "10 s behind", offset: -10, wantErr: ErrValidation},
		{name: "10 s behind, lenient", offset: -10, lenient: true},
		{name: "cannot reach us", unreachable: true, wantErr: ErrValidation},
		{name: "cannot reach a client", unreachable: true, clientMode: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestSwarm(t, 1, nil)
			server := s.nodes[0]
			s.net.serve(server.PeerID(), skewedHandler{Handler: server, offset: tc.offset, unreachable: tc.unreachable})
			n, err := s.start(Config{
				ClientMode: tc.clientMode, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1,
				InitialPeers: []PeerID{server.PeerID()}, LenientBootstrap: tc.lenient,
			})
			if n != nil {
				t.Cleanup(func() { _ = n.Close() })
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !errors.Is(err, ErrBootstrapFailed) {
				t.Fatalf("New: %v, want %v and ErrBootstrapFailed", err, tc.wantErr)
			}
		})
	}
}

// TestHandlerLimits: request caps, misaligned requests, non-finite expirations, shutdown.
func TestHandlerLimits(t *testing.T) {
	s := newTestSwarm(t, 1, func(_ int, cfg *Config) { cfg.MaxRequestItems = 1000 })
	n := s.nodes[0]
	ctx := t.Context()
	now := s.clock.Now()
	key := HashID([]byte("k")).Bytes()
	val := []byte{0x01}
	item := func(exp float64) *dhtpb.StoreRequest {
		return &dhtpb.StoreRequest{Keys: [][]byte{key}, Subkeys: [][]byte{[]byte(TagRegular)}, Values: [][]byte{val},
			ExpirationTime: []float64{exp}, InCache: []bool{false}}
	}
	huge := &dhtpb.StoreRequest{}
	for range 100_000 {
		huge.Keys = append(huge.Keys, key)
		huge.Subkeys = append(huge.Subkeys, []byte(TagRegular))
		huge.Values = append(huge.Values, val)
		huge.ExpirationTime = append(huge.ExpirationTime, now+10)
		huge.InCache = append(huge.InCache, false)
	}
	misaligned := item(now + 10)
	misaligned.InCache = nil
	tests := []struct {
		name    string
		req     *dhtpb.StoreRequest
		wantErr bool
		wantOK  []bool
	}{
		{name: "100,000 items", req: huge, wantErr: true},
		{name: "misaligned", req: misaligned, wantErr: true},
		{name: "NaN expiration", req: item(math.NaN()), wantOK: []bool{false}},
		{name: "+inf expiration", req: item(math.Inf(1)), wantOK: []bool{false}},
		{name: "-inf expiration", req: item(math.Inf(-1)), wantOK: []bool{false}},
		{name: "expired", req: item(now - 1), wantOK: []bool{false}},
		{name: "fine", req: item(now + 10), wantOK: []bool{true}},
		{name: "bad dictionary", req: &dhtpb.StoreRequest{Keys: [][]byte{key}, Subkeys: [][]byte{nil}, Values: [][]byte{{0xc1}},
			ExpirationTime: []float64{now + 20}, InCache: []bool{false}}, wantOK: []bool{false}},
		{name: "bad subkey", req: &dhtpb.StoreRequest{Keys: [][]byte{key}, Subkeys: [][]byte{{0xc1}}, Values: [][]byte{val},
			ExpirationTime: []float64{now + 20}, InCache: []bool{false}}, wantOK: []bool{false}},
		{name: "key over 160 bits", req: &dhtpb.StoreRequest{Keys: [][]byte{make([]byte, 21)}, Subkeys: [][]byte{[]byte(TagRegular)},
			Values: [][]byte{val}, ExpirationTime: []float64{now + 20}, InCache: []bool{false}}, wantOK: []bool{true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := n.HandleStore(ctx, "someone", tc.req)
			if tc.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil || !slices.Equal(resp.GetStoreOk(), tc.wantOK) {
				t.Fatalf("store_ok %v, %v; want %v", resp.GetStoreOk(), err, tc.wantOK)
			}
		})
	}
	if _, err := n.HandleFind(ctx, "someone", &dhtpb.FindRequest{Keys: huge.Keys}); err == nil {
		t.Error("a FIND of 100,000 keys was served")
	}
	if _, err := n.Store(ctx, StoreItem{Key: MustKey("x"), Value: 1, Expiration: math.NaN()}); !errors.Is(err, ErrInvalidExpiration) {
		t.Errorf("local NaN store: %v", err)
	}
	if _, err := n.Store(ctx, StoreItem{Key: MustKey("x"), Value: 1, Expiration: math.Inf(1)}); !errors.Is(err, ErrInvalidExpiration) {
		t.Errorf("local +inf store: %v", err)
	}
	if _, err := n.Store(ctx, StoreItem{Key: MustKey("x"), Value: msgpack.Raw{0xc1}, Expiration: now + 1}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("invalid raw value: %v", err)
	}
	_ = n.Close()
	if _, err := n.HandlePing(ctx, "someone", &dhtpb.PingRequest{}); !errors.Is(err, ErrShutdown) {
		t.Errorf("ping after close: %v", err)
	}
	if _, err := n.Get(ctx, MustKey("x"), GetOptions{}); !errors.Is(err, ErrShutdown) {
		t.Errorf("get after close: %v", err)
	}
}

// TestStorageFlood: a flood of stores beyond MaxStorageEntries is refused item by item and the
// storage stays within its bound.
func TestStorageFlood(t *testing.T) {
	const bound = 100
	s := newTestSwarm(t, 1, func(_ int, cfg *Config) { cfg.MaxStorageEntries = bound })
	n := s.nodes[0]
	now := s.clock.Now()
	req := &dhtpb.StoreRequest{}
	for i := range 3 * bound {
		req.Keys = append(req.Keys, HashID([]byte{byte(i), byte(i >> 8)}).Bytes())
		req.Subkeys = append(req.Subkeys, []byte(TagRegular))
		req.Values = append(req.Values, []byte{0x01})
		req.ExpirationTime = append(req.ExpirationTime, now+1000-float64(i)) // each expires before the last
		req.InCache = append(req.InCache, false)
	}
	resp, err := n.HandleStore(t.Context(), "flooder", req)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i, ok := range resp.GetStoreOk() {
		if ok != (i < bound) {
			t.Fatalf("item %d: stored=%v", i, ok)
		}
		if ok {
			accepted++
		}
	}
	if got := n.Stats().StoredKeys; got != bound || accepted != bound {
		t.Errorf("%d keys stored, %d accepted; want %d", got, accepted, bound)
	}
}

// TestRoutingRefresh: every RefreshInterval, stale buckets are refreshed by a lookup, and peers
// that do not answer are evicted (spec §2.9, Q4 fixed).
func TestRoutingRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &testSwarm{net: newLoopNet()}
		base := Config{Logger: quietLogger(), RefreshInterval: -1}
		for i := range 5 {
			cfg := base
			if i > 0 {
				cfg.InitialPeers = []PeerID{testPeer(0)}
			}
			s.add(t, cfg)
		}
		cfg := base
		cfg.RefreshInterval = time.Minute
		cfg.InitialPeers = []PeerID{testPeer(0)}
		watcher := s.add(t, cfg)
		if got := watcher.Stats().RoutingTable.Active; got != 5 {
			t.Fatalf("watcher knows %d nodes, want 5", got)
		}
		s.stop(3)
		finds := watcher.Stats().Sent.Find
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if watcher.Stats().Sent.Find != finds {
			t.Fatal("refreshed before the interval")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if watcher.Stats().Sent.Find == finds {
			t.Fatal("no refresh lookup after the interval")
		}
		watcher.mu.Lock()
		_, stillThere := watcher.table.PeerByID(s.nodes[3].NodeID())
		watcher.mu.Unlock()
		if stillThere {
			t.Error("the dead peer is still in the routing table")
		}
		if got := watcher.Stats().RoutingTable.Active; got != 4 {
			t.Errorf("watcher knows %d nodes, want 4", got)
		}
	})
}

// TestCancellation: a GET or STORE whose context ends returns its error promptly and leaves no
// goroutine behind; peers are not punished for our cancellation.
func TestCancellation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &testSwarm{net: newLoopNet()}
		for i := range 4 {
			cfg := Config{Logger: quietLogger(), RefreshInterval: -1}
			if i > 0 {
				cfg.InitialPeers = []PeerID{testPeer(0)}
			}
			s.add(t, cfg)
		}
		s.net.latency = time.Second
		n := s.nodes[1]
		before := n.Stats().RoutingTable.Active
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := n.Get(ctx, MustKey("absent"), GetOptions{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("get: %v", err)
		}
		ctx2, cancel2 := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel2()
		if _, err := n.Store(ctx2, StoreItem{Key: MustKey("k"), Value: 1, Expiration: n.now() + 100}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("store: %v", err)
		}
		if d := time.Since(start); d > 1100*time.Millisecond {
			t.Errorf("cancelled calls took %v", d)
		}
		synctest.Wait()
		if after := n.Stats().RoutingTable.Active; after != before {
			t.Errorf("routing table went from %d to %d nodes after our own cancellation", before, after)
		}
		if b := n.BannedPeers(); len(b) != 0 {
			t.Errorf("peers banned after our own cancellation: %q", b)
		}
		s.net.latency = 0
	})
}

// rngFor returns a generator seeded by the test's name.
func rngFor(t *testing.T) *rand.Rand {
	h := HashID([]byte(t.Name()))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
}

// TestClose: calls in progress when the node closes return ErrShutdown, and Close returns once
// every goroutine of the node has ended (synctest fails on a leak).
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &testSwarm{net: newLoopNet()}
		for i := range 4 {
			cfg := Config{Logger: quietLogger(), RefreshInterval: time.Minute}
			if i > 0 {
				cfg.InitialPeers = []PeerID{testPeer(0)}
			}
			s.add(t, cfg)
		}
		s.net.latency = time.Second
		n := s.nodes[2]
		ctx := t.Context()
		errs := make(chan error, 3)
		go func() {
			_, err := n.Get(ctx, MustKey("k"), GetOptions{Latest: true})
			errs <- err
		}()
		go func() {
			_, err := n.Store(ctx, StoreItem{Key: MustKey("k"), Value: 1, Expiration: n.now() + 100})
			errs <- err
		}()
		go func() {
			_, err := n.FindNearestNodes(ctx, []ID{RandomID()}, 0, false)
			errs <- err
		}()
		time.Sleep(100 * time.Millisecond)
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := <-errs; !errors.Is(err, ErrShutdown) {
				t.Errorf("call in progress returned %v, want ErrShutdown", err)
			}
		}
		for _, m := range s.nodes {
			_ = m.Close()
		}
		s.net.latency = 0
	})
}

// hangingHandler never answers: every call waits for the caller to give up.
type hangingHandler struct{ Handler }

func (hangingHandler) HandlePing(ctx context.Context, _ PeerID, _ *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestBootstrapStages: New waits for the first ping, then for the others until BootstrapTimeout
// (stragglers are cancelled), and its error names every peer that failed and why (spec §2.2).
func TestBootstrapStages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &testSwarm{net: newLoopNet()}
		good := s.add(t, Config{Logger: quietLogger(), RefreshInterval: -1})
		s.net.serve("hanging", hangingHandler{})
		start := time.Now()
		n, err := s.start(Config{
			Logger: quietLogger(), RefreshInterval: -1, BootstrapTimeout: 2 * time.Second,
			InitialPeers: []PeerID{"hanging", good.PeerID()},
		})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("bootstrap took %v, want the 2s budget (the straggler is waited for)", d)
		}
		if _, in := n.table.PeerByID(good.NodeID()); !in {
			t.Error("the answering peer is not in the routing table")
		}
		_ = n.Close()

		start = time.Now()
		_, err = s.start(Config{
			Logger: quietLogger(), RefreshInterval: -1, WaitTimeout: time.Second, BootstrapTimeout: 500 * time.Millisecond,
			InitialPeers: []PeerID{"hanging", "unknown"},
		})
		if !errors.Is(err, ErrBootstrapFailed) || !errors.Is(err, ErrNoResponse) {
			t.Fatalf("New: %v", err)
		}
		for _, want := range []string{fmtPeer("hanging") + ": no answer within BootstrapTimeout", fmtPeer("unknown") + ": dht: peer did not respond"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Errorf("failed bootstrap took %v, want BootstrapTimeout (500ms)", d)
		}
	})
}
