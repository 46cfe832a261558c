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

// routingTableReporter is implemented by nodes that can list their routing table (a dht.Node).
type routingTableReporter interface {
	RoutingTablePeers() []dht.Contact
}

var _ routingTableReporter = (*libp2pNode)(nil)

// peersProto describes node's peers as of now, sorted by peer ID: the connected ones, the DHT
// contacts and the peers in its routing table.
func peersProto(node Node, contacts map[dht.PeerID]contact, now time.Time) []*ipcpb.PeerStatus {
	inTable := map[dht.PeerID]bool{}
	if r, ok := node.(routingTableReporter); ok {
		for _, c := range r.RoutingTablePeers() {
			inTable[c.Peer] = true
		}
	}
	others := make([]dht.PeerID, 0, len(contacts)+len(inTable))
	for p := range contacts {
		others = append(others, p)
	}
	for p := range inTable {
		if _, dup := contacts[p]; !dup {
			others = append(others, p)
		}
	}
	var out []*ipcpb.PeerStatus
	if r, ok := node.(peerReporter); ok {
		for _, st := range r.peerStatuses(others) {
			raw := dhtrpc.PeerIDFromP2P(st.ID)
			ps := &ipcpb.PeerStatus{
				PeerId: []byte(raw), PeerIdB58: st.ID.String(), AgentVersion: st.Agent,
				Connected: st.Connected, Relayed: st.Relayed, Addrs: st.Addrs,
				LatencySeconds:           st.Latency.Seconds(),
				DhtLastRequestAgeSeconds: -1,
				InRoutingTable:           inTable[raw],
			}
			if c, ok := contacts[raw]; ok {
				contactProto(ps, c, now)
			}
			out = append(out, ps)
		}
		return out
	}
	// A node without a host to ask: the DHT contacts and the routing table alone.
	for _, p := range others {
		ps := &ipcpb.PeerStatus{PeerId: []byte(p), DhtLastRequestAgeSeconds: -1, InRoutingTable: inTable[p]}
		if id, err := dhtrpc.PeerIDToP2P(p); err == nil {
			ps.PeerIdB58 = id.String()
		}
		if c, ok := contacts[p]; ok {
			contactProto(ps, c, now)
		}
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
