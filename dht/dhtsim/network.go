package dhtsim

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hivemind-go/hivemind/dht"
)

// Network is an in-memory network of DHT endpoints. Create it with NewNetwork; it needs no closing.
type Network struct {
	cfg Config
	// randomized is set when calls need a per-pair sequence number (drop, jitter or hooks).
	randomized bool
	// logging is set when Config.Logger was given (per-node loggers are then derived from it).
	logging bool

	mu    sync.RWMutex
	peers map[dht.PeerID]*Endpoint

	stats counters
}

// NewNetwork returns an empty network, or an error wrapping ErrInvalidConfig.
func NewNetwork(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logging := cfg.Logger != nil
	cfg = cfg.withDefaults()
	return &Network{
		cfg:        cfg,
		randomized: cfg.DropRate > 0 || cfg.Latency.Jitter > 0 || cfg.Hooks.set(),
		logging:    logging,
		peers:      make(map[dht.PeerID]*Endpoint),
	}, nil
}

// Config returns the network's configuration with defaults applied.
func (n *Network) Config() Config { return n.cfg }

// PeerID returns the i-th peer ID of the network's seed (see PeerIDFor).
func (n *Network) PeerID(i int) dht.PeerID { return PeerIDFor(n.cfg.Seed, i) }

// NodeID returns the i-th node ID of the network's seed (see NodeIDFor).
func (n *Network) NodeID(i int) dht.ID { return NodeIDFor(n.cfg.Seed, i) }

// Logger returns a logger for the node with this peer ID: Config.Logger with a "node" attribute, or a
// logger that discards everything when Config.Logger is nil.
func (n *Network) Logger(id dht.PeerID) *slog.Logger {
	if !n.logging {
		return n.cfg.Logger
	}
	return n.cfg.Logger.With(slog.String("node", shortID(id)))
}

// Join adds a peer and returns its endpoint, which is the peer's dht.Transport. The peer serves
// nothing until Endpoint.Serve is called. Joining an ID twice is ErrDuplicatePeer.
func (n *Network) Join(id dht.PeerID) (*Endpoint, error) {
	ep := &Endpoint{net: n, id: id, hash: hashPeer(id)}
	ep.alive.Store(true)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.peers[id]; ok {
		return nil, fmt.Errorf("%w: %s", ErrDuplicatePeer, shortID(id))
	}
	n.peers[id] = ep
	return ep, nil
}

// Leave removes a peer: later calls to it fail with ErrUnknownPeer. Calls in flight finish.
func (n *Network) Leave(id dht.PeerID) {
	n.mu.Lock()
	delete(n.peers, id)
	n.mu.Unlock()
}

// Endpoint returns the endpoint of a joined peer, or nil.
func (n *Network) Endpoint(id dht.PeerID) *Endpoint {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.peers[id]
}

// Len returns the number of joined peers.
func (n *Network) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.peers)
}

// Kill makes a peer unreachable and stops its outgoing calls (ErrCallerDown) until Revive. Its
// handler keeps running for calls already delivered. Unknown IDs are ignored.
func (n *Network) Kill(id dht.PeerID) { n.setAlive(id, false) }

// Revive undoes Kill.
func (n *Network) Revive(id dht.PeerID) { n.setAlive(id, true) }

func (n *Network) setAlive(id dht.PeerID, alive bool) {
	if ep := n.Endpoint(id); ep != nil {
		ep.alive.Store(alive)
	}
}

// Partition splits the network: the peers of groups[i] form partition i+1, every peer not named in
// any group stays in partition 0 together with the peers that join later. Calls across partitions
// fail like calls to a killed peer. A new Partition replaces the previous one.
func (n *Network) Partition(groups ...[]dht.PeerID) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	for _, ep := range n.peers {
		ep.group.Store(0)
	}
	for i, g := range groups {
		for _, id := range g {
			if ep := n.peers[id]; ep != nil {
				ep.group.Store(int32(i + 1))
			}
		}
	}
}

// Heal removes every partition.
func (n *Network) Heal() { n.Partition() }

// Stats returns the network-wide call counters.
func (n *Network) Stats() Stats { return n.stats.snapshot() }

// lookup returns the endpoint of id, or nil.
func (n *Network) lookup(id dht.PeerID) *Endpoint {
	n.mu.RLock()
	ep := n.peers[id]
	n.mu.RUnlock()
	return ep
}

// shortID is the last 6 bytes of a peer ID in hex: enough to tell simulated peers apart in logs.
func shortID(id dht.PeerID) string {
	s := id
	if len(s) > 6 {
		s = s[len(s)-6:]
	}
	return fmt.Sprintf("%x", string(s))
}

// KindStats counts the calls of one RPC kind.
type KindStats struct {
	// Calls is the number of calls attempted.
	Calls uint64
	// Delivered is the number of calls whose handler ran.
	Delivered uint64
	// Failed is the number of calls that returned an error (whatever the cause).
	Failed uint64
	// Lost is the number of messages lost by DropRate or a Drop verdict.
	Lost uint64
	// RequestBytes and ResponseBytes sum the marshalled sizes of requests sent and responses returned.
	RequestBytes, ResponseBytes uint64
}

// Stats counts calls per RPC kind.
type Stats struct {
	Ping, Store, Find KindStats
}

// Kind returns the counters of one kind.
func (s Stats) Kind(k Kind) KindStats {
	switch k {
	case Ping:
		return s.Ping
	case Store:
		return s.Store
	default:
		return s.Find
	}
}

// Total sums the three kinds.
func (s Stats) Total() KindStats {
	var t KindStats
	for _, k := range []KindStats{s.Ping, s.Store, s.Find} {
		t.Calls += k.Calls
		t.Delivered += k.Delivered
		t.Failed += k.Failed
		t.Lost += k.Lost
		t.RequestBytes += k.RequestBytes
		t.ResponseBytes += k.ResponseBytes
	}
	return t
}

// Sub returns s - o, counter by counter (for the calls made between two snapshots).
func (s Stats) Sub(o Stats) Stats {
	sub := func(a, b KindStats) KindStats {
		return KindStats{
			Calls: a.Calls - b.Calls, Delivered: a.Delivered - b.Delivered, Failed: a.Failed - b.Failed,
			Lost: a.Lost - b.Lost, RequestBytes: a.RequestBytes - b.RequestBytes,
			ResponseBytes: a.ResponseBytes - b.ResponseBytes,
		}
	}
	return Stats{Ping: sub(s.Ping, o.Ping), Store: sub(s.Store, o.Store), Find: sub(s.Find, o.Find)}
}

// counters are the atomic form of Stats.
type counters [numKinds]struct {
	calls, delivered, failed, lost, reqBytes, respBytes atomic.Uint64
}

func (c *counters) snapshot() Stats {
	var out [numKinds]KindStats
	for k := range c {
		out[k] = KindStats{
			Calls: c[k].calls.Load(), Delivered: c[k].delivered.Load(), Failed: c[k].failed.Load(),
			Lost: c[k].lost.Load(), RequestBytes: c[k].reqBytes.Load(), ResponseBytes: c[k].respBytes.Load(),
		}
	}
	return Stats{Ping: out[Ping], Store: out[Store], Find: out[Find]}
}
