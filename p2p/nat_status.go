package p2p

import (
	"slices"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// autoRelayTag is the tag go-libp2p's auto-relay protects the connection to a relay with while it
// holds a reservation there (autorelay/relay_finder.go): the connected peers protected with it are
// this host's relays, also those whose addresses are not public (then it gives no /p2p-circuit
// address).
const autoRelayTag = "autorelay"

// NATStatus is what a host knows of its own reachability and does with relays: a snapshot.
type NATStatus struct {
	// Reachability is what AutoNAT found (or Config.Reachability forced): public, private or
	// unknown (not decided yet, or a host without AutoNAT).
	Reachability Reachability
	// ReachabilityForced: Config.Reachability fixed it.
	ReachabilityForced bool
	// KadMode is the kad DHT's mode now (server or client; DHTModeAuto follows Reachability).
	KadMode DHTMode

	// The options the host runs with (Config's NAT fields, as hivemind names them).
	Relay, RelayService, AutoRelay, AutoNAT, NATPortMap, NoListen bool

	// RelayAddrs are this host's /p2p-circuit addresses (each through a relay holding a
	// reservation for it), sorted; announced while the host is private.
	RelayAddrs []string
	// Reservations are the relays holding a reservation for this host (connected, and announced in
	// RelayAddrs or protected by auto-relay), sorted.
	Reservations []PeerID

	// The relay service, for other peers: the circuits open now, the circuits opened and refused
	// (over a limit, or unknown destination) since start, the reservations held now and refused,
	// and the bytes relayed.
	CircuitsOpen        int
	CircuitsTotal       uint64
	CircuitsRefused     uint64
	ReservationsHeld    int
	ReservationsRefused uint64
	RelayedBytes        uint64

	// HolePunches counts the hole punches (DCUtR) that gave a direct connection, and the failed
	// ones.
	HolePunches, HolePunchFailures uint64
	// DirectConns and RelayedConns count the open connections by kind.
	DirectConns, RelayedConns int
}

// NATStatus describes the host's reachability, relays and connections now. It reads counters and
// the host's state only: no I/O. A host wrapped around a libp2p host of another origin (mocknet
// tests) reports unknown reachability and its connections only.
func (h *Host) NATStatus() NATStatus {
	st := NATStatus{Reachability: ReachabilityUnknown}
	for _, c := range h.lh.Network().Conns() {
		if isRelayedConn(c) {
			st.RelayedConns++
		} else {
			st.DirectConns++
		}
	}
	if h.kad != nil {
		// kad's Mode() is the configured one (auto stays auto); a server serves the protocol.
		st.KadMode = DHTModeClient
		if slices.Contains(h.lh.Mux().Protocols(), kaddht.ProtocolDHT) {
			st.KadMode = DHTModeServer
		}
	}
	n := h.nat
	if n == nil {
		return st
	}
	c := n.cfg
	st.ReachabilityForced = c.Reachability != ""
	st.Relay, st.RelayService = !c.DisableRelay, !c.DisableRelay && !c.DisableRelayService
	st.AutoRelay, st.AutoNAT, st.NATPortMap, st.NoListen = c.AutoRelay, !c.DisableAutoNAT, c.NATPortMap, c.NoListen
	if n.autoNAT != nil {
		st.Reachability = reachabilityOf(n.autoNAT.Status())
	}
	st.RelayAddrs, st.Reservations = relayAddrs(h.lh.Addrs())
	if c.AutoRelay {
		cm := h.lh.ConnManager()
		for _, p := range h.lh.Network().Peers() {
			if cm.IsProtected(p, autoRelayTag) && !slices.Contains(st.Reservations, p) {
				st.Reservations = append(st.Reservations, p)
			}
		}
		slices.Sort(st.Reservations)
	}
	r := &n.relayed
	st.CircuitsOpen, st.CircuitsTotal, st.CircuitsRefused = int(max(r.circuitsOpen.Load(), 0)), r.circuitsTotal.Load(), r.circuitsRefused.Load()
	st.ReservationsHeld, st.ReservationsRefused = int(max(r.reservationsOpen.Load(), 0)), r.reservationsRefused.Load()
	st.RelayedBytes = r.bytes.Load()
	st.HolePunches, st.HolePunchFailures = n.punched.successes.Load(), n.punched.failures.Load()
	return st
}

func reachabilityOf(r network.Reachability) Reachability {
	switch r {
	case network.ReachabilityPublic:
		return ReachabilityPublic
	case network.ReachabilityPrivate:
		return ReachabilityPrivate
	default:
		return ReachabilityUnknown
	}
}

// relayAddrs picks the /p2p-circuit addresses out of addrs, and the relays they go through.
func relayAddrs(addrs []ma.Multiaddr) (circuits []string, relays []PeerID) {
	for _, a := range addrs {
		if !IsRelayedAddr(a) {
			continue
		}
		circuits = append(circuits, a.String())
		relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT })
		if id, err := peer.IDFromP2PAddr(relay); err == nil && !slices.Contains(relays, id) {
			relays = append(relays, id)
		}
	}
	slices.Sort(circuits)
	slices.Sort(relays)
	return circuits, relays
}
