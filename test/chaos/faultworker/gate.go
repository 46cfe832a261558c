package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/test/chaos/faults"
)

// errPartitioned is what a blocked peer's calls fail with.
var errPartitioned = errors.New("faultworker: partitioned")

// gateOptions puts the production node's DHT RPCs behind the gate in both directions: the gate
// refuses blocked peers and adds link_delay to the RPCs sent, handler_delay to the RPCs served.
func gateOptions(src *faults.Source) dhtrpc.NodeOptions {
	return dhtrpc.NodeOptions{
		WrapTransport: func(t dht.Transport) dht.Transport { return &gatedTransport{inner: t, src: src} },
		WrapHandler:   func(h dht.Handler) dht.Handler { return &gatedHandler{inner: h, src: src} },
	}
}

// gate applies the fault points to one RPC with peer: a blocked peer is refused, a delay is waited.
func gate(ctx context.Context, f faults.Faults, peer dht.PeerID, delay time.Duration) error {
	if len(f.Blocked) > 0 {
		if pid, err := dhtrpc.PeerIDToP2P(peer); err == nil && f.IsBlocked(pid.String()) {
			return fmt.Errorf("%w from %s", errPartitioned, pid)
		}
	}
	return sleep(ctx, delay)
}

// gatedTransport is the node's Transport behind the gate.
type gatedTransport struct {
	inner dht.Transport
	src   *faults.Source
}

func (t *gatedTransport) check(ctx context.Context, peer dht.PeerID) error {
	f := t.src.Get()
	if err := gate(ctx, f, peer, f.LinkDelay); err != nil {
		return fmt.Errorf("%w: %w", dht.ErrNoResponse, err)
	}
	return nil
}

func (t *gatedTransport) Ping(ctx context.Context, peer dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if err := t.check(ctx, peer); err != nil {
		return nil, err
	}
	return t.inner.Ping(ctx, peer, req)
}

func (t *gatedTransport) Store(ctx context.Context, peer dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if err := t.check(ctx, peer); err != nil {
		return nil, err
	}
	return t.inner.Store(ctx, peer, req)
}

func (t *gatedTransport) Find(ctx context.Context, peer dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if err := t.check(ctx, peer); err != nil {
		return nil, err
	}
	return t.inner.Find(ctx, peer, req)
}

// gatedHandler is the node's Handler behind the gate.
type gatedHandler struct {
	inner dht.Handler
	src   *faults.Source
}

func (h *gatedHandler) gate(ctx context.Context, from dht.PeerID) error {
	f := h.src.Get()
	return gate(ctx, f, from, f.HandlerDelay)
}

func (h *gatedHandler) HandlePing(ctx context.Context, from dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if err := h.gate(ctx, from); err != nil {
		return nil, err
	}
	return h.inner.HandlePing(ctx, from, req)
}

func (h *gatedHandler) HandleStore(ctx context.Context, from dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if err := h.gate(ctx, from); err != nil {
		return nil, err
	}
	return h.inner.HandleStore(ctx, from, req)
}

func (h *gatedHandler) HandleFind(ctx context.Context, from dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if err := h.gate(ctx, from); err != nil {
		return nil, err
	}
	return h.inner.HandleFind(ctx, from, req)
}
