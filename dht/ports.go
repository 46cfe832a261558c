package dht

import (
	"context"
	"time"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// PeerID is an opaque libp2p peer ID: the raw multihash bytes held in a string, so it can key maps.
// The dht package never parses it; p2p converts it to and from libp2p's peer.ID.
type PeerID string

// Transport sends the three DHT RPCs to a remote peer. It is the outbound port of a Node: p2p/dhtrpc
// implements it on libp2p, dht/dhtsim in memory.
//
// Contract: every method is safe for concurrent use; ctx bounds the whole call (dial, send, receive),
// and cancelling it aborts the call. A nil error means the peer answered with a well-formed response
// message. A call that could not be sent because no address is known for the peer (the Transport
// resolves peer IDs to addresses itself) is an error that wraps ErrNoAddress; any other failure to
// get a response (dial, timeout, reset, EOF, a remote handler error) is an error that wraps
// ErrNoResponse. The request is not retained or modified; the response is owned by the caller.
type Transport interface {
	Ping(ctx context.Context, peer PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error)
	Store(ctx context.Context, peer PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error)
	Find(ctx context.Context, peer PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error)
}

// Handler serves the three DHT RPCs: the inbound port of a Node (*Node implements it). from is the
// authenticated remote peer, taken from the connection, never from the request.
//
// Contract: safe for concurrent use; ctx is cancelled when the caller goes away. A returned error is
// sent to the caller as a remote handler error; the request is not retained after the call returns.
type Handler interface {
	HandlePing(ctx context.Context, from PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error)
	HandleStore(ctx context.Context, from PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error)
	HandleFind(ctx context.Context, from PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error)
}

// Clock gives DHT time: Unix seconds as float64, the unit of every expiration and of PingResponse's
// dht_time. Timeouts are not the clock's business: they come from contexts.
type Clock interface {
	Now() float64
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current Unix time in seconds.
func (SystemClock) Now() float64 { return float64(time.Now().UnixNano()) / 1e9 }
