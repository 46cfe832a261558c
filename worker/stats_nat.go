package worker

import (
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// NATReporter is implemented by nodes whose host can tell its reachability and relays: the libp2p
// node. A NodeFactory that wraps that node in one of its own forwards NATStatus, or Stats reports
// no reachability for it.
type NATReporter interface {
	NATStatus() p2p.NATStatus
}

var _ NATReporter = (*libp2pNode)(nil)

// NATStatus is the host's reachability and relays (p2p.Host.NATStatus).
func (n *libp2pNode) NATStatus() p2p.NATStatus { return n.host.NATStatus() }

// natProto describes node's reachability and relays; nil for a node that cannot tell.
func natProto(node Node) *ipcpb.NATStatus {
	r, ok := node.(NATReporter)
	if !ok {
		return nil
	}
	st := r.NATStatus()
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
