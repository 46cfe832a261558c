package dhtsim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"google.golang.org/protobuf/proto"
)

// Endpoint is one peer's attachment to a Network: its dht.Transport (outbound calls) and the place its
// dht.Handler is served from (inbound calls). Get one from Network.Join.
type Endpoint struct {
	net   *Network
	id    dht.PeerID
	hash  uint64
	alive atomic.Bool
	group atomic.Int32
	// handler is nil while the peer serves nothing (not yet served, or a client-mode node).
	handler atomic.Pointer[handlerBox]

	mu  sync.Mutex
	seq map[uint64]uint64 // callee hash → calls made so far; only when the network is randomized

	stats  counters
	served [numKinds]atomic.Uint64
}

type handlerBox struct{ h dht.Handler }

var _ dht.Transport = (*Endpoint)(nil)

// ID returns the endpoint's peer ID.
func (e *Endpoint) ID() dht.PeerID { return e.id }

// Serve makes h answer the calls to this peer; nil stops serving (calls then fail with ErrNoHandler).
func (e *Endpoint) Serve(h dht.Handler) {
	if h == nil {
		e.handler.Store(nil)
		return
	}
	e.handler.Store(&handlerBox{h: h})
}

// Alive reports whether the peer is not killed.
func (e *Endpoint) Alive() bool { return e.alive.Load() }

// Stats returns the counters of the calls this endpoint made.
func (e *Endpoint) Stats() Stats { return e.stats.snapshot() }

// Served returns how many calls of a kind this endpoint's handler has been given.
func (e *Endpoint) Served(k Kind) uint64 {
	if k < 0 || k >= numKinds {
		return 0
	}
	return e.served[k].Load()
}

// Ping sends rpc_ping to peer.
func (e *Endpoint) Ping(ctx context.Context, peer dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	resp := new(dhtpb.PingResponse)
	err := e.call(ctx, Ping, peer, req, new(dhtpb.PingRequest), resp,
		func(ctx context.Context, h dht.Handler, from dht.PeerID, in proto.Message) (proto.Message, error) {
			return h.HandlePing(ctx, from, in.(*dhtpb.PingRequest))
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Store sends rpc_store to peer.
func (e *Endpoint) Store(ctx context.Context, peer dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	resp := new(dhtpb.StoreResponse)
	err := e.call(ctx, Store, peer, req, new(dhtpb.StoreRequest), resp,
		func(ctx context.Context, h dht.Handler, from dht.PeerID, in proto.Message) (proto.Message, error) {
			return h.HandleStore(ctx, from, in.(*dhtpb.StoreRequest))
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Find sends rpc_find to peer.
func (e *Endpoint) Find(ctx context.Context, peer dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	resp := new(dhtpb.FindResponse)
	err := e.call(ctx, Find, peer, req, new(dhtpb.FindRequest), resp,
		func(ctx context.Context, h dht.Handler, from dht.PeerID, in proto.Message) (proto.Message, error) {
			return h.HandleFind(ctx, from, in.(*dhtpb.FindRequest))
		})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// serveFunc runs one handler method on the delivered request copy.
type serveFunc func(ctx context.Context, h dht.Handler, from dht.PeerID, in proto.Message) (proto.Message, error)

// call performs one RPC: req is the caller's request (only read), in an empty request message that
// receives the copy given to the handler, resp the empty response message the answer is copied into.
func (e *Endpoint) call(ctx context.Context, kind Kind, to dht.PeerID, req, in, resp proto.Message, serve serveFunc) error {
	n := e.net
	global, mine := &n.stats[kind], &e.stats[kind]
	global.calls.Add(1)
	mine.calls.Add(1)

	var out Outcome
	c, err := e.deliver(ctx, kind, to, req, in, resp, serve, &out)
	if err != nil {
		err = fmt.Errorf("%w: %s to %s: %w", dht.ErrNoResponse, kind, shortID(to), err)
		global.failed.Add(1)
		mine.failed.Add(1)
		if n.logging && n.cfg.Logger.Enabled(ctx, slog.LevelDebug) {
			n.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "dhtsim: call failed",
				slog.String("from", shortID(e.id)), slog.String("to", shortID(to)), slog.Any("err", err))
		}
	} else {
		out.Response = resp
	}
	if c != nil && n.cfg.Hooks.AfterCall != nil {
		out.Err = err
		n.cfg.Hooks.AfterCall(*c, out)
	}
	return err
}

// deliver does the work of call and returns the error cause (not yet wrapped in ErrNoResponse) and,
// once the hooks have seen the call, its description.
func (e *Endpoint) deliver(ctx context.Context, kind Kind, to dht.PeerID, req, in, resp proto.Message,
	serve serveFunc, out *Outcome) (*Call, error) {
	n := e.net
	global, mine := &n.stats[kind], &e.stats[kind]
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w (%w)", ErrTimeout, err)
	}
	if !e.alive.Load() {
		return nil, ErrCallerDown
	}
	callee := n.lookup(to)
	if callee == nil {
		return nil, ErrUnknownPeer
	}

	// Copy on send: the handler gets its own request, decoded from the bytes a real peer would send.
	reqBytes, err := proto.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: request: %w", ErrMarshal, err)
	}
	out.RequestBytes = len(reqBytes)
	global.reqBytes.Add(uint64(len(reqBytes)))
	mine.reqBytes.Add(uint64(len(reqBytes)))
	if err := proto.Unmarshal(reqBytes, in); err != nil {
		return nil, fmt.Errorf("%w: request: %w", ErrMarshal, err)
	}

	c := &Call{From: e.id, To: to, Kind: kind, Request: in}
	var rng stream
	if n.randomized {
		c.Seq = e.nextSeq(callee.hash)
		rng = seeded(n.cfg.Seed, domainCall, e.hash, callee.hash, uint64(kind), c.Seq)
		c.Roll = rng.next()
	}
	// Draw every random quantity in a fixed order, whether used or not, so one call's fate does not
	// depend on another's.
	reqLost := rng.float() < n.cfg.DropRate
	respLost := rng.float() < n.cfg.DropRate
	reqDelay := n.cfg.Latency.draw(&rng)
	respDelay := n.cfg.Latency.draw(&rng)

	if hook := n.cfg.Hooks.BeforeCall; hook != nil {
		switch hook(*c) {
		case Reject:
			return c, ErrRejected
		case Drop:
			reqLost = true
		}
	}
	lose := func() error {
		global.lost.Add(1)
		mine.lost.Add(1)
		return n.silent(ctx)
	}
	if reqLost {
		return c, lose()
	}
	if err := sleep(ctx, reqDelay); err != nil {
		return c, fmt.Errorf("%w (%w)", ErrTimeout, err)
	}

	// Reachability is checked when the request arrives.
	if !e.alive.Load() {
		return c, ErrCallerDown
	}
	if !callee.alive.Load() || callee.group.Load() != e.group.Load() {
		if n.cfg.Unreachable == Refuse {
			return c, ErrUnreachable
		}
		return c, n.silent(ctx)
	}
	box := callee.handler.Load()
	if box == nil {
		return c, ErrNoHandler
	}

	global.delivered.Add(1)
	mine.delivered.Add(1)
	callee.served[kind].Add(1)
	out.Delivered = true
	answer, err := runHandler(ctx, serve, box.h, e.id, in)
	if err != nil {
		return c, err
	}

	respBytes, err := proto.Marshal(answer)
	if err != nil {
		return c, fmt.Errorf("%w: response: %w", ErrMarshal, err)
	}
	if respLost {
		return c, lose()
	}
	out.ResponseBytes = len(respBytes)
	global.respBytes.Add(uint64(len(respBytes)))
	mine.respBytes.Add(uint64(len(respBytes)))
	if err := proto.Unmarshal(respBytes, resp); err != nil {
		return c, fmt.Errorf("%w: response: %w", ErrMarshal, err)
	}
	if err := sleep(ctx, respDelay); err != nil {
		return c, fmt.Errorf("%w (%w)", ErrTimeout, err)
	}
	return c, nil
}

// runHandler runs the handler on its own goroutine, as a real peer would, so that a caller whose
// context ends stops waiting even if the handler does not. The handler's context carries none of the
// caller's values and is cancelled when the caller's context is done.
func runHandler(ctx context.Context, serve serveFunc, h dht.Handler, from dht.PeerID, in proto.Message) (proto.Message, error) {
	hctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	type result struct {
		msg proto.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer cancel()
		msg, err := serve(hctx, h, from, in)
		done <- result{msg: msg, err: err}
	}()
	select {
	case r := <-done:
		stop()
		if r.err != nil {
			// Only the text crosses a real wire; so it does here.
			return nil, fmt.Errorf("%w: %s", ErrRemote, r.err.Error())
		}
		if r.msg == nil {
			return nil, fmt.Errorf("%w: handler returned no response", ErrRemote)
		}
		return r.msg, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w (%w)", ErrTimeout, ctx.Err())
	}
}

// nextSeq returns the number of earlier calls from e to the callee with this hash.
func (e *Endpoint) nextSeq(callee uint64) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seq == nil {
		e.seq = make(map[uint64]uint64)
	}
	s := e.seq[callee]
	e.seq[callee] = s + 1
	return s
}

// silent waits like a caller that gets no answer: until ctx is done or SilentTimeout passes.
func (n *Network) silent(ctx context.Context) error {
	if err := sleep(ctx, n.cfg.SilentTimeout); err != nil {
		return fmt.Errorf("%w (%w)", ErrTimeout, err)
	}
	return fmt.Errorf("%w after %v", ErrTimeout, n.cfg.SilentTimeout)
}

// sleep waits d or until ctx is done, whichever comes first, and returns ctx's error in the latter case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
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
