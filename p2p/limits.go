package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

// Defaults applied to zero Limits fields. They are far above what libp2p's defaults allow one protocol
// (68 inbound streams per peer and protocol), so a busy DHT peer is not throttled, while one peer stays
// bounded: p2pd runs with no limits at all.
const (
	DefaultMaxConns          = 2048
	DefaultMaxConnsPerPeer   = 8
	DefaultMaxStreams        = 32768
	DefaultMaxStreamsPerPeer = 1024
	DefaultMaxMemory         = 1 << 30
	DefaultMaxMemoryPerPeer  = 128 << 20
	DefaultConnManagerLow    = 256 // p2pd's -connManager values
	DefaultConnManagerHigh   = 512
	DefaultConnManagerGrace  = 120 * time.Second
)

// Limits size the libp2p resource manager (hard limits: a stream or connection past them is refused) and
// connection manager (soft: above ConnManagerHigh connections, the least useful unprotected ones are
// trimmed down to ConnManagerLow). Zero fields take the defaults above.
//
// Every frame the servicer machinery reads is charged to the stream's resource scope (and so to its peer's
// MaxMemoryPerPeer) while it is decoded and, for unary calls, until the handler returns; a peer sending
// large frames on many streams is refused memory before it can exhaust the host's.
type Limits struct {
	// MaxConns bounds all connections (inbound and outbound, each direction separately too).
	MaxConns int
	// MaxConnsPerPeer bounds the connections to one peer.
	MaxConnsPerPeer int
	// MaxStreams bounds all open streams.
	MaxStreams int
	// MaxStreamsPerPeer bounds the inbound streams of one peer, and separately its outbound streams.
	MaxStreamsPerPeer int
	// MaxMemory bounds the memory reserved through the resource manager (muxer windows, frames).
	MaxMemory int64
	// MaxMemoryPerPeer bounds the memory reserved for one peer; it must hold at least one frame of
	// Config.MaxMessageSize.
	MaxMemoryPerPeer int64
	// ConnManagerLow and ConnManagerHigh are the connection manager's watermarks.
	ConnManagerLow, ConnManagerHigh int
	// ConnManagerGrace protects new connections from trimming for this long.
	ConnManagerGrace time.Duration
}

// validate reports each invalid field through bad.
func (l Limits) validate(bad func(field, format string, args ...any)) {
	neg := func(field string, v int64) {
		if v < 0 {
			bad("Limits."+field, "negative (%d)", v)
		}
	}
	neg("MaxConns", int64(l.MaxConns))
	neg("MaxConnsPerPeer", int64(l.MaxConnsPerPeer))
	neg("MaxStreams", int64(l.MaxStreams))
	neg("MaxStreamsPerPeer", int64(l.MaxStreamsPerPeer))
	neg("MaxMemory", l.MaxMemory)
	neg("MaxMemoryPerPeer", l.MaxMemoryPerPeer)
	neg("ConnManagerLow", int64(l.ConnManagerLow))
	neg("ConnManagerHigh", int64(l.ConnManagerHigh))
	neg("ConnManagerGrace", int64(l.ConnManagerGrace))
	d := l.withDefaults()
	if l.ConnManagerLow >= 0 && l.ConnManagerHigh >= 0 && d.ConnManagerLow > d.ConnManagerHigh {
		bad("Limits.ConnManagerLow", "%d is above ConnManagerHigh (%d)", d.ConnManagerLow, d.ConnManagerHigh)
	}
}

func (l Limits) withDefaults() Limits {
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&l.MaxConns, DefaultMaxConns)
	setInt(&l.MaxConnsPerPeer, DefaultMaxConnsPerPeer)
	setInt(&l.MaxStreams, DefaultMaxStreams)
	setInt(&l.MaxStreamsPerPeer, DefaultMaxStreamsPerPeer)
	setInt(&l.ConnManagerLow, DefaultConnManagerLow)
	setInt(&l.ConnManagerHigh, DefaultConnManagerHigh)
	if l.MaxMemory == 0 {
		l.MaxMemory = DefaultMaxMemory
	}
	if l.MaxMemoryPerPeer == 0 {
		l.MaxMemoryPerPeer = DefaultMaxMemoryPerPeer
	}
	if l.ConnManagerGrace == 0 {
		l.ConnManagerGrace = DefaultConnManagerGrace
	}
	return l
}

// newResourceManager builds the resource manager for limits l (defaults applied) and frames of at most
// maxMessage bytes. libp2p's own services (identify, ping, relay, …) keep their default limits.
func newResourceManager(l Limits, maxMessage int) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	setDefaultServiceLimits(&scaling)
	base := scaling.AutoScale()

	unlimited := rcmgr.ResourceLimits{
		Streams: rcmgr.Unlimited, StreamsInbound: rcmgr.Unlimited, StreamsOutbound: rcmgr.Unlimited,
		Memory: rcmgr.Unlimited64,
	}
	peerStreams := rcmgr.LimitVal(l.MaxStreamsPerPeer)
	// A stream holds at most one frame being decoded (plus slack for the varint/header and a reply).
	streamMemory := max(int64(16<<20), 2*int64(maxMessage)+(64<<10))
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: rcmgr.LimitVal(l.MaxConns), ConnsInbound: rcmgr.LimitVal(l.MaxConns),
			ConnsOutbound: rcmgr.LimitVal(l.MaxConns),
			Streams:       rcmgr.LimitVal(l.MaxStreams), StreamsInbound: rcmgr.LimitVal(l.MaxStreams),
			StreamsOutbound: rcmgr.LimitVal(l.MaxStreams),
			Memory:          rcmgr.LimitVal64(l.MaxMemory),
		},
		// Connections in their handshake and streams before protocol negotiation.
		Transient: rcmgr.ResourceLimits{
			Conns: rcmgr.LimitVal(max(l.MaxConns/4, 1)), ConnsInbound: rcmgr.LimitVal(max(l.MaxConns/4, 1)),
			ConnsOutbound: rcmgr.LimitVal(max(l.MaxConns/4, 1)),
			Streams:       rcmgr.LimitVal(max(l.MaxStreams/4, 1)), StreamsInbound: rcmgr.LimitVal(max(l.MaxStreams/4, 1)),
			StreamsOutbound: rcmgr.LimitVal(max(l.MaxStreams/4, 1)),
			Memory:          rcmgr.LimitVal64(max(l.MaxMemory/4, 1)),
		},
		// Handle names are protocols with no service: bound them per peer and system-wide only.
		ProtocolDefault:     unlimited,
		ProtocolPeerDefault: unlimited,
		ServiceDefault:      unlimited,
		ServicePeerDefault:  unlimited,
		PeerDefault: rcmgr.ResourceLimits{
			Conns: rcmgr.LimitVal(l.MaxConnsPerPeer), ConnsInbound: rcmgr.LimitVal(l.MaxConnsPerPeer),
			ConnsOutbound:  rcmgr.LimitVal(l.MaxConnsPerPeer),
			Streams:        2 * peerStreams,
			StreamsInbound: peerStreams, StreamsOutbound: peerStreams,
			Memory: rcmgr.LimitVal64(l.MaxMemoryPerPeer),
		},
		Stream: rcmgr.ResourceLimits{Memory: rcmgr.LimitVal64(streamMemory)},
		// The relay service's circuit buffers (relay.go).
		Service: map[string]rcmgr.ResourceLimits{relayv2.ServiceName: relayServiceLimits()},
	}
	// No metrics (as the rest of the host, options_host.go): by default the resource manager
	// reports every reservation to Prometheus through a trace reporter that takes a lock and
	// formats a timestamp per event, about a tenth of a busy worker's CPU, for metrics nothing reads.
	mgr, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(base)), rcmgr.WithMetricsDisabled())
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return mgr, nil
}

// newConnManager builds the connection manager for limits l (defaults applied).
func newConnManager(l Limits) (*connmgr.BasicConnMgr, error) {
	cm, err := connmgr.NewConnManager(l.ConnManagerLow, l.ConnManagerHigh, connmgr.WithGracePeriod(l.ConnManagerGrace))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	return cm, nil
}
