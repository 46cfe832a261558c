package dhtsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"google.golang.org/protobuf/proto"
)

// DefaultSilentTimeout bounds a call that gets no answer (lost message, unreachable peer) when its
// context is not done earlier: hivemind's wait_timeout.
const DefaultSilentTimeout = 3 * time.Second

// Config configures a Network. The zero value is a lossless network with no latency and seed 0.
// NewNetwork validates a copy with defaults applied; the caller's struct is never modified.
type Config struct {
	// Seed drives every random decision of the network (see the package doc on determinism).
	Seed int64
	// Latency is the one-way delay of every message; a call waits it twice (request and response).
	Latency Latency
	// DropRate is the probability that one message (a request or a response) is lost, in [0, 1].
	DropRate float64
	// Unreachable chooses how calls to a killed or partitioned-away peer fail. Default Silent.
	Unreachable Unreachable
	// SilentTimeout bounds a call that gets no answer. Zero means DefaultSilentTimeout.
	SilentTimeout time.Duration
	// Hooks observe and steer individual calls.
	Hooks Hooks
	// Logger, if set, gets the network's debug events and is the parent of the per-node loggers from
	// Network.Logger (attribute "node"). Nil discards everything.
	Logger *slog.Logger
}

// Latency is a one-way message delay: Base plus a random jitter drawn from Dist with scale Jitter.
type Latency struct {
	Base   time.Duration
	Jitter time.Duration
	Dist   Dist
}

// Dist is the distribution of the jitter.
type Dist int

const (
	// Uniform jitter is uniform in [0, Jitter).
	Uniform Dist = iota
	// Exponential jitter has mean Jitter and is capped at 10 × Jitter.
	Exponential
)

// Unreachable is how a call to a killed or partitioned-away peer fails.
type Unreachable int

const (
	// Silent: no answer; the call fails with ErrTimeout when its context is done or after
	// SilentTimeout (a dead host on the internet).
	Silent Unreachable = iota
	// Refuse: the call fails at once with ErrUnreachable (a refused connection).
	Refuse
)

// Kind is an RPC kind.
type Kind int

// The three DHT RPCs.
const (
	Ping Kind = iota
	Store
	Find
	numKinds
)

// String returns the hivemind handler method name of the kind.
func (k Kind) String() string {
	switch k {
	case Ping:
		return "rpc_ping"
	case Store:
		return "rpc_store"
	case Find:
		return "rpc_find"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Call describes one RPC for the hooks.
type Call struct {
	From, To dht.PeerID
	Kind     Kind
	// Seq is the number of earlier calls From made to To (of any kind); 0 when no hooks, drop or
	// jitter are configured.
	Seq uint64
	// Roll is a deterministic pseudo-random number for this call, for hooks that make random choices.
	Roll uint64
	// Request is the request as the callee will receive it. Hooks must not modify it.
	Request proto.Message
}

// Verdict is a BeforeCall hook's decision.
type Verdict int

const (
	// Deliver lets the call proceed normally (drops and reachability still apply).
	Deliver Verdict = iota
	// Drop loses the request: the call fails like a silent timeout.
	Drop
	// Reject fails the call at once with ErrRejected.
	Reject
)

// Outcome is what happened to a call, for the AfterCall hook.
type Outcome struct {
	// Response is the response the caller receives (nil on failure). Hooks must not modify it.
	Response proto.Message
	// Err is the error the caller receives.
	Err error
	// Delivered reports whether the callee's handler ran.
	Delivered bool
	// RequestBytes and ResponseBytes are the marshalled sizes (ResponseBytes is 0 when no response).
	RequestBytes, ResponseBytes int
}

// Hooks steer and observe calls, like hashicorp/raft's fuzzy TransportHooks. Nil hooks are skipped.
// Both are called on the caller's goroutine, concurrently for concurrent calls.
type Hooks struct {
	// BeforeCall decides the fate of a call before its request is sent.
	BeforeCall func(c Call) Verdict
	// AfterCall sees the outcome of every call that reached BeforeCall.
	AfterCall func(c Call, o Outcome)
}

func (h Hooks) set() bool { return h.BeforeCall != nil || h.AfterCall != nil }

// Validate reports every invalid field of c.
func (c Config) Validate() error {
	var errs []error
	if c.Latency.Base < 0 {
		errs = append(errs, fmt.Errorf("Latency.Base %v is negative", c.Latency.Base))
	}
	if c.Latency.Jitter < 0 {
		errs = append(errs, fmt.Errorf("Latency.Jitter %v is negative", c.Latency.Jitter))
	}
	if c.Latency.Dist != Uniform && c.Latency.Dist != Exponential {
		errs = append(errs, fmt.Errorf("Latency.Dist %d is not Uniform or Exponential", c.Latency.Dist))
	}
	if math.IsNaN(c.DropRate) || c.DropRate < 0 || c.DropRate > 1 {
		errs = append(errs, fmt.Errorf("DropRate %v is outside [0, 1]", c.DropRate))
	}
	if c.Unreachable != Silent && c.Unreachable != Refuse {
		errs = append(errs, fmt.Errorf("Unreachable %d is not Silent or Refuse", c.Unreachable))
	}
	if c.SilentTimeout < 0 {
		errs = append(errs, fmt.Errorf("SilentTimeout %v is negative", c.SilentTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// withDefaults returns a copy of c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.SilentTimeout == 0 {
		c.SilentTimeout = DefaultSilentTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
