package ipc

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Histogram counts durations in fixed buckets since a worker started (a snapshot: take the
// difference of two with Sub for an interval). Counts[i] counts the durations d with
// Bounds[i-1] < d <= Bounds[i] (seconds); the last count, Counts[len(Bounds)], those above every
// bound.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	// Sum of the durations counted, in seconds.
	Sum float64 `json:"sum"`
}

// Count is the number of durations counted.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Sub returns what h counted since prev, an earlier snapshot of the same histogram. When prev has
// other bounds or counts more than h somewhere (it belongs to another worker), h is returned whole.
func (h Histogram) Sub(prev Histogram) Histogram {
	if !slices.Equal(h.Bounds, prev.Bounds) || len(h.Counts) != len(prev.Counts) {
		return h
	}
	out := Histogram{Bounds: h.Bounds, Counts: make([]uint64, len(h.Counts)), Sum: h.Sum - prev.Sum}
	for i, c := range h.Counts {
		if c < prev.Counts[i] {
			return h
		}
		out.Counts[i] = c - prev.Counts[i]
	}
	return out
}

// Quantile estimates the q-quantile (0 ≤ q ≤ 1) of the durations counted, in seconds, by linear
// interpolation inside the bucket that holds it (as Prometheus' histogram_quantile does; the first
// bucket starts at 0, and a quantile in the overflow bucket is the last bound). It is NaN when
// nothing was counted or the histogram is malformed.
func (h Histogram) Quantile(q float64) float64 {
	n := h.Count()
	if n == 0 || len(h.Counts) != len(h.Bounds)+1 || len(h.Bounds) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	q = math.Min(math.Max(q, 0), 1)
	rank := q * float64(n)
	var below uint64
	for i, c := range h.Counts {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		if i == len(h.Bounds) {
			return h.Bounds[len(h.Bounds)-1]
		}
		lower := 0.0
		if i > 0 {
			lower = h.Bounds[i-1]
		}
		return lower + (h.Bounds[i]-lower)*(rank-float64(below))/float64(c)
	}
	return h.Bounds[len(h.Bounds)-1]
}

// OpStats counts one kind of call made to a worker: "get", "get_many", "store" or "store_many".
type OpStats struct {
	Name  string `json:"name"`
	Calls uint64 `json:"calls"`
	// Failed counts the calls that returned an error.
	Failed uint64 `json:"failed"`
	// Latency is the duration of the calls, measured by the worker.
	Latency Histogram `json:"latency"`
}

// Peer kinds (PeerStatus.Kind), told apart by the agent version announced through identify.
const (
	// PeerGo is a Go worker (hivemind-go's agent version).
	PeerGo = "go"
	// PeerHivemind is a hivemind (Python) peer: its p2pd daemon's agent version.
	PeerHivemind = "hivemind"
	// PeerOther is any other libp2p agent.
	PeerOther = "other"
	// PeerUnknown: identify has not told yet.
	PeerUnknown = "unknown"
)

// Agent versions of the peer kinds: p2p.DefaultUserAgent for Go workers, "p2pd/0.1" (spec/wire.md)
// for hivemind's daemon.
const (
	goWorkerAgent = "hivemind-go"
	p2pdAgent     = "p2pd"
)

// PeerKindOf classifies an agent version: PeerGo, PeerHivemind, PeerOther or PeerUnknown (empty).
func PeerKindOf(agent string) string {
	switch {
	case agent == "":
		return PeerUnknown
	case agent == goWorkerAgent || strings.HasPrefix(agent, goWorkerAgent+"/"):
		return PeerGo
	case agent == p2pdAgent || strings.HasPrefix(agent, p2pdAgent+"/"):
		return PeerHivemind
	}
	return PeerOther
}

// PeerStatus is one peer of a worker's host: connected now, or a DHT contact of its node (a peer
// that answered its DHT requests or sent it theirs; the most recent few hundred).
type PeerStatus struct {
	// PeerID is the base58 peer ID.
	PeerID string `json:"peer_id"`
	// Agent is the agent version announced through libp2p identify; empty when unknown.
	Agent string `json:"agent,omitempty"`
	// Kind classifies Agent (PeerKindOf).
	Kind      string `json:"kind"`
	Connected bool   `json:"connected"`
	// Relayed: every open connection goes through a circuit relay.
	Relayed bool `json:"relayed,omitempty"`
	// Addrs are the remote multiaddrs of the open connections.
	Addrs []string `json:"addrs,omitempty"`
	// Latency is libp2p's moving average of round trips; 0 when unknown.
	Latency time.Duration `json:"latency_ns,omitempty"`
	// DHTRTT is the moving average of the round trips of the DHT RPCs the peer answered; 0 when it
	// never answered one.
	DHTRTT time.Duration `json:"dht_rtt_ns,omitempty"`
	// DHTLastAnswer is when the peer last answered a DHT RPC of the worker's; zero when never.
	DHTLastAnswer time.Time `json:"dht_last_answer,omitzero"`
	// DHTLastRequest is when the peer last sent the worker a DHT request; zero when never.
	DHTLastRequest time.Time `json:"dht_last_request,omitzero"`
	// InRoutingTable: the peer is in one of the worker's routing-table buckets.
	InRoutingTable bool `json:"in_routing_table,omitempty"`
}

// NATStatus is a worker's view of its own reachability and of what it does with relays.
type NATStatus struct {
	// Reachability is "public", "private" or "unknown" (AutoNAT has not decided, or no host);
	// Forced: ForceReachability fixed it.
	Reachability string `json:"reachability"`
	Forced       bool   `json:"reachability_forced,omitempty"`
	// KadMode is the libp2p kad DHT's mode now: "server" or "client".
	KadMode string `json:"kad_mode,omitempty"`
	// The options the worker's host runs with.
	Relay        bool `json:"relay"`
	RelayService bool `json:"relay_service"`
	AutoRelay    bool `json:"auto_relay"`
	AutoNAT      bool `json:"auto_nat"`
	NATPortMap   bool `json:"nat_port_map"`
	NoListen     bool `json:"no_listen"`
	// RelayAddrs are the worker's /p2p-circuit addresses; Reservations the relays (base58 peer
	// IDs) holding a reservation for it.
	RelayAddrs   []string `json:"relay_addrs,omitempty"`
	Reservations []string `json:"reservations,omitempty"`
	// The relay service, for other peers: circuits open now, opened and refused since the worker
	// started; reservations held now and refused; bytes relayed.
	CircuitsOpen        int    `json:"circuits_open"`
	CircuitsTotal       uint64 `json:"circuits_total"`
	CircuitsRefused     uint64 `json:"circuits_refused"`
	ReservationsHeld    int    `json:"reservations_held"`
	ReservationsRefused uint64 `json:"reservations_refused"`
	RelayedBytes        uint64 `json:"relayed_bytes"`
	// HolePunches counts the hole punches that gave a direct connection; HolePunchFailures the
	// others.
	HolePunches       uint64 `json:"hole_punches"`
	HolePunchFailures uint64 `json:"hole_punch_failures"`
	// DirectConns and RelayedConns count the host's open connections by kind.
	DirectConns  int `json:"direct_conns"`
	RelayedConns int `json:"relayed_conns"`
}

// natFromProto converts a worker's NAT status; a worker that sent none is "unknown".
func natFromProto(n *ipcpb.NATStatus) NATStatus {
	if n == nil {
		return NATStatus{Reachability: "unknown"}
	}
	return NATStatus{
		Reachability: n.GetReachability(), Forced: n.GetReachabilityForced(), KadMode: n.GetKadMode(),
		Relay: n.GetRelay(), RelayService: n.GetRelayService(), AutoRelay: n.GetAutoRelay(),
		AutoNAT: n.GetAutoNat(), NATPortMap: n.GetNatPortMap(), NoListen: n.GetNoListen(),
		RelayAddrs: n.GetRelayAddrs(), Reservations: n.GetReservations(),
		CircuitsOpen: int(n.GetCircuitsOpen()), CircuitsTotal: n.GetCircuitsTotal(), CircuitsRefused: n.GetCircuitsRefused(),
		ReservationsHeld: int(n.GetReservationsHeld()), ReservationsRefused: n.GetReservationsRefused(),
		RelayedBytes: n.GetRelayedBytes(), HolePunches: n.GetHolePunches(), HolePunchFailures: n.GetHolePunchFailures(),
		DirectConns: int(n.GetDirectConns()), RelayedConns: int(n.GetRelayedConns()),
	}
}

// clone returns a deep copy of n.
func (n NATStatus) clone() NATStatus {
	n.RelayAddrs, n.Reservations = slices.Clone(n.RelayAddrs), slices.Clone(n.Reservations)
	return n
}

func histogramFromProto(h *ipcpb.Histogram) Histogram {
	if h == nil {
		return Histogram{}
	}
	return Histogram{Bounds: h.GetBounds(), Counts: h.GetCounts(), Sum: h.GetSum()}
}

// peerFromProto converts a worker's peer, its ages relative to now.
func peerFromProto(p *ipcpb.PeerStatus, now time.Time) PeerStatus {
	out := PeerStatus{
		PeerID: p.GetPeerIdB58(), Agent: p.GetAgentVersion(), Kind: PeerKindOf(p.GetAgentVersion()),
		Connected: p.GetConnected(), Relayed: p.GetRelayed(), Addrs: p.GetAddrs(),
		Latency: seconds(p.GetLatencySeconds()), InRoutingTable: p.GetInRoutingTable(),
	}
	if p.GetDhtAnswered() {
		out.DHTRTT = seconds(p.GetDhtRttSeconds())
		out.DHTLastAnswer = now.Add(-seconds(p.GetDhtLastAnswerAgeSeconds()))
	}
	if age := p.GetDhtLastRequestAgeSeconds(); age >= 0 {
		out.DHTLastRequest = now.Add(-seconds(age))
	}
	return out
}

// seconds converts a worker's seconds, bounded to a sane range (a worker's bad float is not the
// parent's crash).
func seconds(s float64) time.Duration {
	if math.IsNaN(s) || s <= 0 {
		return 0
	}
	return time.Duration(math.Min(s, 1e9) * float64(time.Second))
}

// clone returns a deep copy of h.
func (h Histogram) clone() Histogram {
	return Histogram{Bounds: slices.Clone(h.Bounds), Counts: slices.Clone(h.Counts), Sum: h.Sum}
}

// cloneOps, cloneRPCs and clonePeers deep-copy a slot snapshot's slices for a Status reader, so
// that nothing a reader does reaches the snapshot.
func cloneOps(ops []OpStats) []OpStats {
	out := slices.Clone(ops)
	for i := range out {
		out[i].Latency = out[i].Latency.clone()
	}
	return out
}

func cloneRPCs(rpcs []RPCStats) []RPCStats {
	out := slices.Clone(rpcs)
	for i := range out {
		out[i].SentLatency, out[i].ReceivedLatency = out[i].SentLatency.clone(), out[i].ReceivedLatency.clone()
	}
	return out
}

func clonePeers(peers []PeerStatus) []PeerStatus {
	out := slices.Clone(peers)
	for i := range out {
		out[i].Addrs = slices.Clone(out[i].Addrs)
	}
	return out
}
