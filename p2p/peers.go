package p2p

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// agentVersionKey is where libp2p's identify service keeps a peer's agent version in the peerstore.
const agentVersionKey = "AgentVersion"

// PeerStatus describes one peer as this host knows it: what identify told about it and how it is
// connected now.
type PeerStatus struct {
	ID PeerID
	// Agent is the agent version the peer announced through identify ("hivemind-go" for a Go
	// worker, "p2pd/0.1" for hivemind's p2pd); empty until identify ran.
	Agent string
	// Connected: at least one connection to the peer is open.
	Connected bool
	// Relayed: every open connection goes through a relay (isRelayedConn); false when one is
	// direct or none is open.
	Relayed bool
	// Addrs are the remote multiaddrs of the open connections.
	Addrs []string
	// Latency is the peerstore's moving average of round trips to the peer; 0 when unknown.
	Latency time.Duration
}

// PeerStatuses describes the connected peers and, connected or not, the peers in others (the peers
// a caller tracks, such as a DHT node's contacts), sorted by ID, each once. It reads the host's
// connection list and peerstore only: no I/O.
func (h *Host) PeerStatuses(others []PeerID) []PeerStatus {
	nw := h.lh.Network()
	ps := h.lh.Peerstore()
	ids := nw.Peers()
	for _, p := range others {
		if p != "" && p != h.lh.ID() {
			ids = append(ids, p)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]PeerStatus, 0, len(ids))
	for _, id := range ids {
		st := PeerStatus{ID: id, Latency: ps.LatencyEWMA(id)}
		if v, err := ps.Get(id, agentVersionKey); err == nil {
			st.Agent, _ = v.(string)
		}
		st.Connected, st.Relayed, st.Addrs = connState(nw.ConnsToPeer(id))
		out = append(out, st)
	}
	return out
}

// connState summarises a peer's open connections: whether there is one, whether all of them are
// relayed, and their remote addresses.
func connState(conns []network.Conn) (connected, relayed bool, addrs []string) {
	if len(conns) == 0 {
		return false, false, nil
	}
	relayed = true
	for _, c := range conns {
		if !isRelayedConn(c) {
			relayed = false
		}
		s := c.RemoteMultiaddr().String()
		if !slices.Contains(addrs, s) {
			addrs = append(addrs, s)
		}
	}
	return true, relayed, addrs
}

// isRelayedConn reports whether c goes through a circuit relay: a limited (relayed) connection, or
// one whose remote address holds /p2p-circuit. PeerStatus, NATStatus and the hole-punch retries
// all count relayed connections by it.
func isRelayedConn(c network.Conn) bool {
	return c.Stat().Limited || IsRelayedAddr(c.RemoteMultiaddr())
}

// IsRelayedAddr reports whether m goes through a circuit relay (holds /p2p-circuit).
func IsRelayedAddr(m ma.Multiaddr) bool {
	for i := range m {
		if m[i].Code() == ma.P_CIRCUIT {
			return true
		}
	}
	return false
}
