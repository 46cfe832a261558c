package p2p

import (
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
)

// The relay service's defaults: p2pd's (-relayMaxCircuits, -relayMaxReservations,
// -relayBufferSize, -relayDataLimit, -relayTimeLimit), which hivemind runs with.
const (
	DefaultRelayMaxCircuits     = 16
	DefaultRelayMaxReservations = 128
	DefaultRelayBufferSize      = 16 << 20
	DefaultRelayDataLimit       = 4 << 30
	DefaultRelayTimeLimit       = 30 * time.Minute
)

// RelayLimits size the circuit v2 relay service a host runs for other peers. Zero fields take the
// defaults above.
//
// Every circuit the relay carries charges two buffers of BufferSize to the resource manager, so
// Limits.MaxMemory also bounds how many circuits run at once (p2pd runs without resource limits):
// with p2pd's 16 MiB buffers and the default 1 GiB, about 25. A circuit the memory cannot hold is
// refused like one over MaxCircuits (RESOURCE_LIMIT_EXCEEDED); a busy relay raises MaxMemory or
// lowers BufferSize.
type RelayLimits struct {
	// MaxCircuits bounds the circuits open at once from, and to, one peer.
	MaxCircuits int
	// MaxReservations bounds the reservations held at once, in all, per peer and per IP address.
	MaxReservations int
	// BufferSize is the size of each of a circuit's two copy buffers, in bytes.
	BufferSize int
	// DataLimit bounds the bytes relayed in each direction of one relayed connection, which is
	// reset past it.
	DataLimit int64
	// TimeLimit bounds the life of one relayed connection.
	TimeLimit time.Duration
}

// validate reports each invalid field through bad.
func (l RelayLimits) validate(bad func(field, format string, args ...any)) {
	if l.MaxCircuits < 0 {
		bad("Relay.MaxCircuits", "negative (%d)", l.MaxCircuits)
	}
	if l.MaxReservations < 0 {
		bad("Relay.MaxReservations", "negative (%d)", l.MaxReservations)
	}
	if l.BufferSize < 0 {
		bad("Relay.BufferSize", "negative (%d)", l.BufferSize)
	}
	if l.DataLimit < 0 {
		bad("Relay.DataLimit", "negative (%d)", l.DataLimit)
	}
	if l.TimeLimit < 0 {
		bad("Relay.TimeLimit", "negative (%v)", l.TimeLimit)
	}
}

func (l RelayLimits) withDefaults() RelayLimits {
	if l.MaxCircuits == 0 {
		l.MaxCircuits = DefaultRelayMaxCircuits
	}
	if l.MaxReservations == 0 {
		l.MaxReservations = DefaultRelayMaxReservations
	}
	if l.BufferSize == 0 {
		l.BufferSize = DefaultRelayBufferSize
	}
	if l.DataLimit == 0 {
		l.DataLimit = DefaultRelayDataLimit
	}
	if l.TimeLimit == 0 {
		l.TimeLimit = DefaultRelayTimeLimit
	}
	return l
}

// resources are the relay service's resources for l (defaults applied), set as p2pd sets them.
func (l RelayLimits) resources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: l.TimeLimit, Data: l.DataLimit}
	r.MaxCircuits = l.MaxCircuits
	r.MaxReservations = l.MaxReservations
	r.MaxReservationsPerPeer = l.MaxReservations
	r.MaxReservationsPerIP = l.MaxReservations
	r.MaxReservationsPerASN = l.MaxReservations
	r.BufferSize = l.BufferSize
	return r
}

// relayServiceLimits are the resource-manager limits of the relay service: its circuits' buffers
// may take the host's whole memory budget (the system scope, Limits.MaxMemory, still bounds them,
// and the relay reserves them at high priority, so it stops at 80% of it); streams keep libp2p's
// default service limits.
func relayServiceLimits() rcmgr.ResourceLimits {
	return rcmgr.ResourceLimits{Memory: rcmgr.Unlimited64}
}

// startRelayService starts the circuit v2 relay service on h with limits l, counting into stats.
// It runs whatever the host's reachability, as p2pd's relay does.
func startRelayService(h host.Host, l RelayLimits, stats *relayStats) (*relayv2.Relay, error) {
	return relayv2.New(h, relayv2.WithResources(l.resources()), relayv2.WithMetricsTracer(stats))
}

// relayStats counts what the relay service does for other peers (relayv2.MetricsTracer).
type relayStats struct {
	circuitsOpen        atomic.Int64
	circuitsTotal       atomic.Uint64
	circuitsRefused     atomic.Uint64
	reservationsOpen    atomic.Int64
	reservationsRefused atomic.Uint64
	bytes               atomic.Uint64
}

var _ relayv2.MetricsTracer = (*relayStats)(nil)

func (s *relayStats) RelayStatus(bool) {}

func (s *relayStats) ConnectionOpened() {
	s.circuitsOpen.Add(1)
	s.circuitsTotal.Add(1)
}

func (s *relayStats) ConnectionClosed(time.Duration) { s.circuitsOpen.Add(-1) }

func (s *relayStats) ConnectionRequestHandled(status pbv2.Status) {
	if status != pbv2.Status_OK {
		s.circuitsRefused.Add(1)
	}
}

func (s *relayStats) ReservationAllowed(isRenewal bool) {
	if !isRenewal {
		s.reservationsOpen.Add(1)
	}
}

func (s *relayStats) ReservationClosed(cnt int) { s.reservationsOpen.Add(-int64(cnt)) }

func (s *relayStats) ReservationRequestHandled(status pbv2.Status) {
	if status != pbv2.Status_OK {
		s.reservationsRefused.Add(1)
	}
}

func (s *relayStats) BytesTransferred(cnt int) { s.bytes.Add(uint64(cnt)) }

// holePunchStats counts the hole punches (DCUtR) this host took part in (holepunch.EventTracer).
type holePunchStats struct {
	successes, failures atomic.Uint64
}

var _ holepunch.EventTracer = (*holePunchStats)(nil)

func (s *holePunchStats) Trace(evt *holepunch.Event) {
	if e, ok := evt.Evt.(*holepunch.EndHolePunchEvt); ok {
		if e.Success {
			s.successes.Add(1)
		} else {
			s.failures.Add(1)
		}
	}
}
