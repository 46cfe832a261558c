package dht

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/test/vectors"
	"google.golang.org/protobuf/proto"
)

// fakeClock is a settable DHT clock.
type fakeClock struct {
	mu  sync.Mutex
	now float64
}

func (c *fakeClock) Now() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// loopCall is one call recorded by a loopNet, with the exact bytes on the wire.
type loopCall struct {
	from, to PeerID
	kind     rpcKind
	request  []byte
	response []byte // nil when the call failed
}

// loopNet is a minimal in-memory network for package-internal tests: every request and response
// goes through deterministic protobuf marshalling (as on the wire) and is recorded. Calls to an
// unknown peer fail at once.
type loopNet struct {
	mu       sync.Mutex
	handlers map[PeerID]Handler
	calls    []loopCall
	noRecord bool          // do not record calls (big tests)
	latency  time.Duration // one-way delay of every message (use inside synctest bubbles)
}

func newLoopNet() *loopNet { return &loopNet{handlers: map[PeerID]Handler{}} }

// serve makes p reachable and served by h; a nil h makes p unknown (calls to it fail at once).
func (l *loopNet) serve(p PeerID, h Handler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h == nil {
		delete(l.handlers, p)
		return
	}
	l.handlers[p] = h
}

// sleep waits the one-way latency, or until ctx is done.
func (l *loopNet) sleep(ctx context.Context) error {
	l.mu.Lock()
	d := l.latency
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *loopNet) endpoint(self PeerID) Transport { return loopEndpoint{net: l, self: self} }

// takeCalls returns the calls recorded since the last takeCalls.
func (l *loopNet) takeCalls() []loopCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	l.calls = nil
	return out
}

type loopEndpoint struct {
	net  *loopNet
	self PeerID
}

var deterministic = proto.MarshalOptions{Deterministic: true}

func loopCallOf[Req, Resp proto.Message](ctx context.Context, e loopEndpoint, kind rpcKind, to PeerID, req Req,
	newReq func() Req, newResp func() Resp, serve func(Handler, context.Context, PeerID, Req) (Resp, error),
) (Resp, error) {
	var zero Resp
	reqBytes, err := deterministic.Marshal(req)
	if err != nil {
		return zero, err
	}
	rec := loopCall{from: e.self, to: to, kind: kind, request: reqBytes}
	e.net.mu.Lock()
	h := e.net.handlers[to]
	e.net.mu.Unlock()
	record := func() {
		e.net.mu.Lock()
		if !e.net.noRecord {
			e.net.calls = append(e.net.calls, rec)
		}
		e.net.mu.Unlock()
	}
	if err := e.net.sleep(ctx); err != nil {
		record()
		return zero, fmt.Errorf("%w: %w", ErrNoResponse, err)
	}
	if h == nil {
		record()
		return zero, fmt.Errorf("%w: loopNet: unknown peer", ErrNoResponse)
	}
	if err := ctx.Err(); err != nil {
		record()
		return zero, fmt.Errorf("%w: %w", ErrNoResponse, err)
	}
	in := newReq()
	if err := proto.Unmarshal(reqBytes, in); err != nil {
		return zero, err
	}
	resp, err := serve(h, ctx, e.self, in)
	if err != nil {
		record()
		return zero, fmt.Errorf("%w: remote handler error: %w", ErrNoResponse, err)
	}
	rec.response, err = deterministic.Marshal(resp)
	if err != nil {
		return zero, err
	}
	record()
	if err := e.net.sleep(ctx); err != nil {
		return zero, fmt.Errorf("%w: %w", ErrNoResponse, err)
	}
	out := newResp()
	if err := proto.Unmarshal(rec.response, out); err != nil {
		return zero, err
	}
	return out, nil
}

func (e loopEndpoint) Ping(ctx context.Context, to PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	return loopCallOf(ctx, e, rpcPing, to, req,
		func() *dhtpb.PingRequest { return &dhtpb.PingRequest{} },
		func() *dhtpb.PingResponse { return &dhtpb.PingResponse{} },
		Handler.HandlePing)
}

func (e loopEndpoint) Store(ctx context.Context, to PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	return loopCallOf(ctx, e, rpcStore, to, req,
		func() *dhtpb.StoreRequest { return &dhtpb.StoreRequest{} },
		func() *dhtpb.StoreResponse { return &dhtpb.StoreResponse{} },
		Handler.HandleStore)
}

func (e loopEndpoint) Find(ctx context.Context, to PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	return loopCallOf(ctx, e, rpcFind, to, req,
		func() *dhtpb.FindRequest { return &dhtpb.FindRequest{} },
		func() *dhtpb.FindResponse { return &dhtpb.FindResponse{} },
		Handler.HandleFind)
}

// vectorMsgpack returns hivemind's encoding of a typed vector value (the loader's Value.Msgpack),
// failing the test when it has none.
func vectorMsgpack(tb testing.TB, v vectors.Value) []byte {
	tb.Helper()
	b, err := v.Msgpack()
	if err != nil {
		tb.Fatalf("typed %s value: %v", v.Kind, err)
	}
	return b
}

// vectorDictionary decodes a typed dictionary_dht_value as hivemind's DictionaryDHTValue.unpackb
// would its packing (the loader's Value.Msgpack): every item as given, maxsize and latest expiration
// included.
func vectorDictionary(v vectors.Value) (*DictionaryValue, error) {
	if v.Kind != vectors.KindDictionary {
		return nil, fmt.Errorf("a typed %s value, want a dictionary_dht_value", v.Kind)
	}
	packed, err := v.Msgpack()
	if err != nil {
		return nil, err
	}
	return UnpackDictionary(packed)
}

// packedWhole returns d packed with every entry it holds (frozen: nothing expires or is evicted),
// to compare it with a typed dictionary_dht_value's packing.
func packedWhole(d *DictionaryValue) []byte {
	prev := d.SetFrozen(true)
	defer d.SetFrozen(prev)
	return d.Pack(0)
}

func mustID(t testing.TB, b []byte) ID {
	t.Helper()
	id, err := IDFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
