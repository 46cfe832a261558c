package dhtrpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// Class is hivemind's servicer class name of the DHT RPCs; it is part of every handle name.
const Class = "DHTProtocol"

// The DHT RPC method names (hivemind's DHTProtocol.rpc_* methods).
const (
	MethodPing  = "rpc_ping"
	MethodStore = "rpc_store"
	MethodFind  = "rpc_find"
)

// Methods lists the three methods in registration order.
var Methods = [...]string{MethodPing, MethodStore, MethodFind}

// HandleName returns the handle name (libp2p protocol ID) of a DHT method, e.g.
// "DHTProtocol.rpc_find".
func HandleName(method string) string { return p2p.HandleName(p2p.Namespace{}, Class, method) }

// PeerIDFromP2P converts a libp2p peer ID to a dht.PeerID: its raw multihash bytes.
func PeerIDFromP2P(p p2p.PeerID) dht.PeerID { return dht.PeerID(p2p.PeerIDBytes(p)) }

// PeerIDToP2P converts a dht.PeerID back to a libp2p peer ID, or fails with ErrInvalidPeerID.
func PeerIDToP2P(p dht.PeerID) (p2p.PeerID, error) {
	id, err := p2p.PeerIDFromBytes([]byte(p))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPeerID, err)
	}
	return id, nil
}

// Serve registers h as DHTProtocol on host: rpc_ping, rpc_store and rpc_find. Each call is given
// the caller's peer ID from the connection. It fails (registering nothing) when any of the names
// is already taken on host or host is closed.
func Serve(host *p2p.Host, h dht.Handler) error {
	if host == nil || h == nil {
		return errors.New("dhtrpc: Serve needs a host and a handler")
	}
	regs := []func() error{
		func() error {
			return p2p.AddUnaryHandler(host, HandleName(MethodPing),
				func(ctx context.Context, from p2p.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
					return h.HandlePing(ctx, PeerIDFromP2P(from), req)
				})
		},
		func() error {
			return p2p.AddUnaryHandler(host, HandleName(MethodStore),
				func(ctx context.Context, from p2p.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
					return h.HandleStore(ctx, PeerIDFromP2P(from), req)
				})
		},
		func() error {
			return p2p.AddUnaryHandler(host, HandleName(MethodFind),
				func(ctx context.Context, from p2p.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
					return h.HandleFind(ctx, PeerIDFromP2P(from), req)
				})
		},
	}
	for i, reg := range regs {
		if err := reg(); err != nil {
			for _, m := range Methods[:i] {
				host.RemoveHandler(HandleName(m))
			}
			return fmt.Errorf("dhtrpc: serve %s: %w", HandleName(Methods[i]), err)
		}
	}
	return nil
}

// Unserve removes the DHTProtocol handlers from host (hivemind's shutdown does the same); calls
// being served finish. Names that are not registered are ignored.
func Unserve(host *p2p.Host) {
	for _, m := range Methods {
		host.RemoveHandler(HandleName(m))
	}
}
