package worker

import (
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// natReporter is implemented by nodes whose host can tell its reachability and relays (the libp2p
// node).
type natReporter interface {
	natStatus() p2p.NATStatus
}

var _ natReporter = (*libp2pNode)(nil)

func (n *libp2pNode) natStatus() p2p.NATStatus { return n.host.NATStatus() }

// natProto describes node's reachability and relays; nil for a node without a libp2p host.
func natProto(node Node) *ipcpb.NATStatus {
	r, ok := node.(natReporter)
	if !ok {
		return nil
	}
	st := r.natStatus()
	out := &ipcpb.NATStatus{
		Reachability: string(st.Reachability), ReachabilityForced: st.ReachabilityForced, KadMode: string(st.KadMode),
		Relay: st.Relay, RelayService: st.RelayService, AutoRelay: st.AutoRelay, AutoNat: st.AutoNAT,
		NatPortMap: st.NATPortMap, NoListen: st.NoListen, RelayAddrs: st.RelayAddrs,
		CircuitsOpen: uint32(st.CircuitsOpen), CircuitsTotal: st.CircuitsTotal, CircuitsRefused: st.CircuitsRefused,
		ReservationsHeld: uint32(st.ReservationsHeld), ReservationsRefused: st.ReservationsRefused,
		RelayedBytes: st.RelayedBytes, HolePunches: st.HolePunches, HolePunchFailures: st.HolePunchFailures,
		DirectConns: uint32(st.DirectConns), RelayedConns: uint32(st.RelayedConns),
	}
	for _, p := range st.Reservations {
		out.Reservations = append(out.Reservations, p.String())
	}
	return out
}
