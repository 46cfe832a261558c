package dhtrpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"google.golang.org/protobuf/proto"
)

// Transport is a dht.Transport over a p2p.Host: each call is one unary DHTProtocol call (a new
// libp2p stream). Every rpc_find answer's peers are noted as referred by the peer that answered
// (p2p.Host.NoteReferrals), so the host can ask it for their addresses when peer routing finds
// none. It is safe for concurrent use and holds no state besides the host.
type Transport struct {
	host *p2p.Host
}

var _ dht.Transport = (*Transport)(nil)

// NewTransport returns a Transport calling from host.
func NewTransport(host *p2p.Host) *Transport { return &Transport{host: host} }

// Ping calls DHTProtocol.rpc_ping on peer.
func (t *Transport) Ping(ctx context.Context, peer dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	return call[*dhtpb.PingResponse](ctx, t.host, peer, MethodPing, req)
}

// Store calls DHTProtocol.rpc_store on peer.
func (t *Transport) Store(ctx context.Context, peer dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	return call[*dhtpb.StoreResponse](ctx, t.host, peer, MethodStore, req)
}

// Find calls DHTProtocol.rpc_find on peer, and notes the peers of its answer as referred by peer.
func (t *Transport) Find(ctx context.Context, peer dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	resp, err := call[*dhtpb.FindResponse](ctx, t.host, peer, MethodFind, req)
	if err != nil {
		return nil, err
	}
	if referrer, err := PeerIDToP2P(peer); err == nil {
		t.host.NoteReferrals(referrer, nearestPeers(resp))
	}
	return resp, nil
}

// nearestPeers returns the distinct valid peer IDs among an answer's nearest_peer_ids. (The keys
// of one answer share most of their neighbours: a FIND of 31 keys names some 600 peers, a dozen
// distinct ones, and each is parsed once.)
func nearestPeers(resp *dhtpb.FindResponse) []p2p.PeerID {
	var out []p2p.PeerID
	seen := make(map[string]struct{})
	for _, r := range resp.GetResults() {
		for _, raw := range r.GetNearestPeerIds() {
			if _, dup := seen[string(raw)]; dup {
				continue
			}
			seen[string(raw)] = struct{}{}
			if id, err := p2p.PeerIDFromBytes(raw); err == nil {
				out = append(out, id)
			}
		}
	}
	return out
}

// call makes one unary call and maps every failure to an error wrapping the cause and either
// dht.ErrNoAddress (the peer could not be dialled: peer routing found no address for it, and the
// call's context had not ended) or dht.ErrNoResponse (everything else).
func call[Resp, Req proto.Message](ctx context.Context, host *p2p.Host, peer dht.PeerID, method string, req Req) (Resp, error) {
	var zero Resp
	pid, err := PeerIDToP2P(peer)
	if err != nil {
		return zero, fmt.Errorf("%w: %s: %w", dht.ErrNoResponse, HandleName(method), err)
	}
	resp, err := p2p.CallUnary[Resp](ctx, host, pid, HandleName(method), req)
	if err != nil {
		if errors.Is(err, p2p.ErrNoAddress) && ctx.Err() == nil {
			return zero, fmt.Errorf("%w: %s on %s: %w", dht.ErrNoAddress, HandleName(method), pid, err)
		}
		return zero, fmt.Errorf("%w: %s on %s: %w", dht.ErrNoResponse, HandleName(method), pid, err)
	}
	return resp, nil
}
