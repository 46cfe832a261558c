package worker

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// peerReporter is implemented by nodes that can describe their host's peers (the libp2p node).
type peerReporter interface {
	// peerStatuses describes the connected peers and the peers in others.
	peerStatuses(others []dht.PeerID) []p2p.PeerStatus
}

var _ peerReporter = (*libp2pNode)(nil)

func (n *libp2pNode) peerStatuses(others []dht.PeerID) []p2p.PeerStatus {
	ids := make([]p2p.PeerID, 0, len(others))
	for _, p := range others {
		if id, err := dhtrpc.PeerIDToP2P(p); err == nil {
			ids = append(ids, id)
		}
	}
	return n.host.PeerStatuses(ids)
}

// instrumentedNode is the default NodeFactory of a Server: NewLibp2pNode with its DHT RPCs
// measured by stats.
func instrumentedNode(stats *dhtStats) NodeFactory {
	return func(ctx context.Context, spec NodeSpec) (Node, error) {
		return NewLibp2pNodeWith(ctx, spec, Libp2pOptions{DHT: stats.options()})
	}
}

// peersProto describes node's peers (connected ones and DHT contacts) as of now, sorted by peer ID.
func peersProto(node Node, contacts map[dht.PeerID]contact, now time.Time) []*ipcpb.PeerStatus {
	var out []*ipcpb.PeerStatus
	if r, ok := node.(peerReporter); ok {
		ids := make([]dht.PeerID, 0, len(contacts))
		for p := range contacts {
			ids = append(ids, p)
		}
		for _, st := range r.peerStatuses(ids) {
			raw := dhtrpc.PeerIDFromP2P(st.ID)
			ps := &ipcpb.PeerStatus{
				PeerId: []byte(raw), PeerIdB58: st.ID.String(), AgentVersion: st.Agent,
				Connected: st.Connected, Relayed: st.Relayed, Addrs: st.Addrs,
				LatencySeconds:           st.Latency.Seconds(),
				DhtLastRequestAgeSeconds: -1,
			}
			if c, ok := contacts[raw]; ok {
				contactProto(ps, c, now)
			}
			out = append(out, ps)
		}
		return out
	}
	// A node without a host to ask: the DHT contacts alone.
	for p, c := range contacts {
		ps := &ipcpb.PeerStatus{PeerId: []byte(p), DhtLastRequestAgeSeconds: -1}
		if id, err := dhtrpc.PeerIDToP2P(p); err == nil {
			ps.PeerIdB58 = id.String()
		}
		contactProto(ps, c, now)
		out = append(out, ps)
	}
	slices.SortFunc(out, func(a, b *ipcpb.PeerStatus) int { return strings.Compare(string(a.PeerId), string(b.PeerId)) })
	return out
}

func contactProto(ps *ipcpb.PeerStatus, c contact, now time.Time) {
	if !c.lastAnswer.IsZero() {
		ps.DhtAnswered = true
		ps.DhtRttSeconds = c.rtt.Seconds()
		ps.DhtLastAnswerAgeSeconds = now.Sub(c.lastAnswer).Seconds()
	}
	if !c.lastRequest.IsZero() {
		ps.DhtLastRequestAgeSeconds = now.Sub(c.lastRequest).Seconds()
	}
}
