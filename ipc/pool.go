package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// RestartPolicy says when a pool restarts a slot's worker (OTP's permanent / transient / temporary).
type RestartPolicy int

// Restart policies. The zero value is RestartAlways.
const (
	// RestartAlways restarts a worker however it ended.
	RestartAlways RestartPolicy = iota
	// RestartOnFailure restarts a worker that failed (non-zero exit, signal, failed health checks,
	// failed start), not one that exited cleanly.
	RestartOnFailure
	// RestartNever leaves the slot stopped once its worker ends.
	RestartNever
)

func (p RestartPolicy) String() string {
	switch p {
	case RestartAlways:
		return "always"
	case RestartOnFailure:
		return "on-failure"
	case RestartNever:
		return "never"
	default:
		return fmt.Sprintf("RestartPolicy(%d)", int(p))
	}
}

// GiveUpScope says what gives up when a slot exceeds its restart intensity.
type GiveUpScope int

// Give-up scopes. The zero value is GiveUpSlot.
const (
	// GiveUpSlot: only that slot stops (state SlotFailed); the others keep running.
	GiveUpSlot GiveUpScope = iota
	// GiveUpPool: the whole pool stops and Serve returns the slot's *GaveUpError.
	GiveUpPool
)

// Defaults of the health checks.
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthFailures = 2
)

// HealthConfig: every Interval, the pool checks each running worker over the gRPC health service
// (and reads its stats) with a Timeout deadline; after Failures consecutive failures the worker is
// killed and restarted. Zero fields take the defaults; a negative Interval disables the checks.
type HealthConfig struct {
	Interval time.Duration
	Timeout  time.Duration
	Failures int
}

// PoolConfig configures a Pool. Passed by value; zero fields take their defaults.
type PoolConfig struct {
	// Workers is the number of slots. Default 1.
	Workers int
	// Name prefixes slot names: "<Name>-1", "<Name>-2", ... Default "worker".
	Name string
	// StateDir, when set, gives each slot the state directory <StateDir>/<slot name>: a stable
	// identity (the same peer ID across restarts), node ID and persisted records.
	StateDir string
	// Node is every slot's node configuration; its StateDir is replaced by the slot's.
	Node NodeConfig
	// SlotNode, when set, adjusts the node configuration of slot index (0-based) before each start.
	SlotNode func(index int, node NodeConfig) NodeConfig
	// BootstrapFromPool: every (re)start adds the visible multiaddrs of the other slots running at
	// that moment to the node's InitialPeers. A slot that would start while no other slot runs (the
	// pool's start, or every worker died at once) starts only if it holds the pool's seed claim
	// (slot 0 holds it when the pool starts; then the first slot to ask while it is free), and
	// otherwise waits until a slot runs, bootstraps from it, and so joins the same swarm. See
	// seedClaim for the rule and its bound (twice StartTimeout, then the slot starts alone with a
	// logged warning). A worker that started alone is handed the other slots' multiaddrs (AddPeers)
	// as soon as one runs, and so joins their swarm (see joiner; SlotStatus.Alone shows it until then).
	BootstrapFromPool bool
	// Restart is the restart policy of every slot.
	Restart RestartPolicy
	// Backoff shapes restart delays.
	Backoff BackoffConfig
	// Intensity bounds restarts per period.
	Intensity IntensityConfig
	// GiveUp says whether exceeding the intensity stops the slot or the pool.
	GiveUp GiveUpScope
	// Health configures the health checks.
	Health HealthConfig
	// StartTimeout bounds a worker's launch and configuration. Default DefaultStartTimeout.
	StartTimeout time.Duration
	// Stop bounds the stop sequence of each worker.
	Stop StopConfig
	// EventHook receives every slot transition, synchronously, on the slot's goroutine: it must
	// return quickly and must not call the pool back, except Status. The transition is published
	// before its event: Status, read from the hook or by anyone the hook hands the event to, already
	// shows it (see Event).
	EventHook func(Event)
	// Logger receives the pool's logs and the workers' relayed logs. Default slog.Default().
	Logger *slog.Logger
	// Clock is the time source of backoff, intensity and health checks. Default SystemClock.
	Clock Clock
}

// Validate checks every field and reports each bad one (errors wrap ErrInvalidConfig).
func (c PoolConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.Workers < 0 {
		bad("Workers", "negative (%d)", c.Workers)
	}
	if c.Name != "" && filepath.Base(c.Name) != c.Name {
		bad("Name", "%q must be a plain name (it names state directories)", c.Name)
	}
	switch c.Restart {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		bad("Restart", "unknown policy %d", int(c.Restart))
	}
	switch c.GiveUp {
	case GiveUpSlot, GiveUpPool:
	default:
		bad("GiveUp", "unknown scope %d", int(c.GiveUp))
	}
	if c.Health.Timeout < 0 {
		bad("Health.Timeout", "negative (%v)", c.Health.Timeout)
	}
	if c.Health.Failures < 0 {
		bad("Health.Failures", "negative (%d)", c.Health.Failures)
	}
	if c.StartTimeout < 0 {
		bad("StartTimeout", "negative (%v)", c.StartTimeout)
	}
	errs = append(errs, c.Node.Validate(), c.Backoff.validate(), c.Intensity.validate(), c.Stop.validate("Stop"))
	return errors.Join(errs...)
}

func (c PoolConfig) withDefaults() PoolConfig {
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.Name == "" {
		c.Name = "worker"
	}
	c.Backoff = c.Backoff.withDefaults()
	c.Intensity = c.Intensity.withDefaults()
	if c.Health.Interval == 0 {
		c.Health.Interval = DefaultHealthInterval
	}
	if c.Health.Timeout == 0 {
		c.Health.Timeout = DefaultHealthTimeout
	}
	if c.Health.Failures == 0 {
		c.Health.Failures = DefaultHealthFailures
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	c.Stop = c.Stop.withDefaults()
	if c.EventHook == nil {
		c.EventHook = func(Event) {}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return c
}

// Pool supervises N worker slots, OTP style (DESIGN.md §5): each slot is served by one goroutine that
// owns its state, launches a worker, watches it (process exit, health checks), and restarts it by
// policy with jittered exponential backoff until the restart intensity is exceeded. Calls go through
// per-slot Clients that follow the slot's current worker.
//
// Use: NewPool, then Serve(ctx) (or StartPool, which serves in the background and waits until every
// slot is ready); Shutdown or cancelling ctx stops every worker with the stop sequence.
type Pool struct {
	cfg      PoolConfig
	launcher Launcher
	slots    []*slot
	seed     seedClaim // BootstrapFromPool only

	// hurry is cancelled when Shutdown's deadline passes: stop sequences skip to SIGKILL.
	hurry      context.Context
	hurryNow   context.CancelFunc
	mu         sync.Mutex // guards cancel and started
	cancel     context.CancelFunc
	started    bool
	served     chan struct{} // closed when Serve has returned
	serveErr   error
	stopReport StopReport
}

// NewPool validates cfg and returns a pool that has not started any worker yet.
func NewPool(cfg PoolConfig, launcher Launcher) (*Pool, error) {
	if launcher == nil {
		return nil, fmt.Errorf("%w: nil Launcher", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	p := &Pool{cfg: cfg, launcher: launcher, served: make(chan struct{})}
	p.seed.init()
	p.hurry, p.hurryNow = context.WithCancel(context.Background())
	for i := range cfg.Workers {
		p.slots = append(p.slots, newSlot(p, i, fmt.Sprintf("%s-%d", cfg.Name, i+1)))
	}
	return p, nil
}

// StartPool creates a pool, serves it in the background and waits until every slot is ready. On
// failure everything started is stopped. Stop the pool with Shutdown.
func StartPool(ctx context.Context, cfg PoolConfig, launcher Launcher) (*Pool, error) {
	p, err := NewPool(cfg, launcher)
	if err != nil {
		return nil, err
	}
	go func() { _ = p.Serve(context.Background()) }()
	if err := p.WaitReady(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), p.cfg.Stop.ShutdownTimeout)
		defer cancel()
		_, _ = p.Shutdown(sctx)
		return nil, err
	}
	return p, nil
}

// Serve runs the pool until ctx is done or Shutdown is called, then stops every worker and returns.
// It returns nil after a requested stop, the *GaveUpError of a slot when GiveUp is GiveUpPool, and
// the joined *GaveUpErrors when every slot gave up. Serve may be called once.
func (p *Pool) Serve(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return fmt.Errorf("ipc: Pool.Serve called twice: %w", ErrStopped)
	}
	p.started = true
	ctx, cancel := context.WithCancelCause(ctx)
	p.cancel = func() { cancel(nil) }
	p.mu.Unlock()
	defer cancel(nil)

	errs := make([]error, len(p.slots))
	var wg sync.WaitGroup
	for i, s := range p.slots {
		wg.Go(func() {
			errs[i] = s.serve(ctx)
			if errs[i] != nil && p.cfg.GiveUp == GiveUpPool {
				cancel(errs[i])
			}
		})
	}
	wg.Wait()
	report := StopReport{}
	for _, s := range p.slots {
		report.Slots = append(report.Slots, s.stopped)
	}
	var err error
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	} else {
		err = errors.Join(errs...)
	}
	p.stopReport, p.serveErr = report, err
	close(p.served)
	return err
}

// Shutdown stops the pool: every worker goes through the stop sequence, in parallel. When ctx ends
// first, the remaining sequences skip straight to SIGKILL. It returns how each worker ended and
// Serve's error. Calling it before Serve stops the pool from starting.
func (p *Pool) Shutdown(ctx context.Context) (StopReport, error) {
	p.mu.Lock()
	if !p.started {
		p.started = true
		close(p.served)
		p.mu.Unlock()
		for _, s := range p.slots {
			s.publish(func(st *slotSnap) { st.state = SlotStopped })
		}
		return StopReport{}, nil
	}
	cancel := p.cancel
	p.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	select {
	case <-p.served:
	case <-ctx.Done():
		p.hurryNow()
		<-p.served
	}
	return p.stopReport, p.serveErr
}

// WaitReady waits until every slot's worker is running, a slot gave up or stopped, or ctx is done.
func (p *Pool) WaitReady(ctx context.Context) error {
	for _, s := range p.slots {
		if err := s.waitRunning(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of slots.
func (p *Pool) Len() int { return len(p.slots) }

// ClientOptions tune a slot client.
type ClientOptions struct {
	// WaitReady: while the slot restarts, calls wait (bounded by their ctx) for the next worker
	// instead of failing at once with ErrRestarting.
	WaitReady bool
}

// Client returns a client for slot index (0-based) that follows the slot across restarts. It panics
// on an index out of range.
func (p *Pool) Client(index int, opts ClientOptions) *Client {
	return &Client{src: slotSource{s: p.slots[index], wait: opts.WaitReady}}
}

// Status is a snapshot of every slot.
func (p *Pool) Status() Status {
	out := Status{Slots: make([]SlotStatus, len(p.slots))}
	for i, s := range p.slots {
		out.Slots[i] = s.status()
	}
	return out
}

// seedClaim decides which slot of a BootstrapFromPool pool may start while no other slot runs, so
// that one worker comes up alone and the others bootstrap from it, instead of each coming up alone
// (the pool's start, or a restart after every worker died at once).
//
// The rule: the claim goes to the first slot that asks while it is free (slot 0 holds it from the
// pool's start) and is held until that slot's start attempt ends, ready or failed. A slot that finds
// no other slot running and the claim held by another waits until a slot runs (it bootstraps from
// it), the claim is freed (it asks again) or twice StartTimeout passed (it starts alone and logs a
// warning). The holder never waits for anyone and its attempt is bounded by StartTimeout, so
// waiting cannot deadlock; the bound covers a Launcher that overruns its ctx.
//
// It is lock-free: holder and the change channel are atomics, and a waiter loads the change channel
// before it checks, so it cannot miss a change.
type seedClaim struct {
	holder atomic.Int64 // slot index, or -1 when free
	// changed is closed and replaced when the claim is freed or a slot changes state.
	changed atomic.Pointer[chan struct{}]
}

func (c *seedClaim) init() {
	ch := make(chan struct{})
	c.changed.Store(&ch)
	c.holder.Store(0)
}

// claim takes the claim for slot i if it is free; it reports whether slot i holds it.
func (c *seedClaim) claim(i int) bool {
	return c.holder.CompareAndSwap(-1, int64(i)) || c.holder.Load() == int64(i)
}

// release frees the claim if slot i holds it.
func (c *seedClaim) release(i int) {
	if c.holder.CompareAndSwap(int64(i), -1) {
		c.notify()
	}
}

// next returns a channel closed at the next change.
func (c *seedClaim) next() <-chan struct{} { return *c.changed.Load() }

// notify wakes the waiters of the current change channel.
func (c *seedClaim) notify() {
	ch := make(chan struct{})
	close(*c.changed.Swap(&ch))
}

// bootstrapWait bounds how long a slot waits for another one to bootstrap from.
func (c PoolConfig) bootstrapWait() time.Duration { return 2 * c.StartTimeout }
