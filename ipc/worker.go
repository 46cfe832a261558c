package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hivemind-go/hivemind/dht"
)

// Defaults of the stop sequence.
const (
	DefaultShutdownTimeout = 5 * time.Second
	DefaultTermTimeout     = 3 * time.Second
	DefaultKillTimeout     = 5 * time.Second
)

// StopConfig bounds each step of the stop sequence: Shutdown RPC → SIGTERM → SIGKILL → go-plugin
// Kill. Zero fields take the defaults.
type StopConfig struct {
	// ShutdownTimeout bounds the Shutdown RPC and the wait for the process to exit after it.
	ShutdownTimeout time.Duration
	// TermTimeout is how long to wait for an exit after SIGTERM.
	TermTimeout time.Duration
	// KillTimeout is how long to wait for an exit after SIGKILL before giving up on reaping.
	KillTimeout time.Duration
}

func (c StopConfig) validate(field string) error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{name: "ShutdownTimeout", v: c.ShutdownTimeout},
		{name: "TermTimeout", v: c.TermTimeout},
		{name: "KillTimeout", v: c.KillTimeout},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%w: %s.%s: negative (%v)", ErrInvalidConfig, field, f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

func (c StopConfig) withDefaults() StopConfig {
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.TermTimeout == 0 {
		c.TermTimeout = DefaultTermTimeout
	}
	if c.KillTimeout == 0 {
		c.KillTimeout = DefaultKillTimeout
	}
	return c
}

// StopMethod is how a worker ended when it was stopped.
type StopMethod int

// Stop methods, from the gentlest.
const (
	// StoppedAlreadyExited: the process had exited before the stop sequence began.
	StoppedAlreadyExited StopMethod = iota
	// StoppedGracefully: the Shutdown RPC drained it and it exited.
	StoppedGracefully
	// StoppedTerminated: it exited after SIGTERM.
	StoppedTerminated
	// StoppedKilled: it had to be killed with SIGKILL.
	StoppedKilled
	// StoppedUnreaped: it did not exit even after SIGKILL within the timeout (uninterruptible
	// sleep); its resources are released anyway.
	StoppedUnreaped
)

func (m StopMethod) String() string {
	switch m {
	case StoppedAlreadyExited:
		return "already exited"
	case StoppedGracefully:
		return "graceful"
	case StoppedTerminated:
		return "SIGTERM"
	case StoppedKilled:
		return "SIGKILL"
	case StoppedUnreaped:
		return "unreaped"
	default:
		return fmt.Sprintf("StopMethod(%d)", int(m))
	}
}

// stopProcess runs the stop sequence on p and releases it. ctx can only shorten the sequence (each
// step also has its own bound); when ctx ends, the remaining steps are skipped down to SIGKILL.
func stopProcess(ctx context.Context, p Process, cfg StopConfig, logger *slog.Logger) StopMethod {
	m := stopSequence(ctx, p, cfg, logger)
	if m == StoppedUnreaped {
		go p.Release() // returns when the kernel finally reaps it
	} else {
		p.Release()
	}
	return m
}

func stopSequence(ctx context.Context, p Process, cfg StopConfig, logger *slog.Logger) StopMethod {
	select {
	case <-p.Done():
		return StoppedAlreadyExited
	default:
	}
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-p.Done():
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	if ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, cfg.ShutdownTimeout)
		err := NewClient(p.Conn(), p.Done()).Shutdown(sctx)
		cancel()
		if err != nil && !errors.Is(err, ErrWorkerGone) {
			logger.Debug("shutdown RPC failed", "pid", p.PID(), "error", err)
		}
		if wait(cfg.ShutdownTimeout) {
			return StoppedGracefully
		}
	}
	if ctx.Err() == nil {
		logger.Warn("worker did not exit after Shutdown; sending SIGTERM", "pid", p.PID())
		if err := p.Signal(syscall.SIGTERM); errors.Is(err, os.ErrProcessDone) {
			return StoppedGracefully
		}
		if wait(cfg.TermTimeout) {
			return StoppedTerminated
		}
	}
	logger.Warn("killing worker", "pid", p.PID())
	if err := p.Signal(syscall.SIGKILL); errors.Is(err, os.ErrProcessDone) {
		return StoppedTerminated
	}
	t := time.NewTimer(cfg.KillTimeout)
	defer t.Stop()
	select {
	case <-p.Done():
		return StoppedKilled
	case <-t.C:
		logger.Error("worker not reaped after SIGKILL", "pid", p.PID())
		return StoppedUnreaped
	}
}

// WorkerConfig configures StartWorker. The zero value starts a worker by re-executing this binary,
// with an ephemeral identity, on loopback, bootstrapping from nobody.
type WorkerConfig struct {
	// Name identifies the worker in logs. Default "worker".
	Name string
	// Node is the node's configuration (initial peers, state directory, DHT parameters, ...).
	Node NodeConfig
	// Launcher makes the worker process. Default: an ExecLauncher with a zero ExecConfig.
	Launcher Launcher
	// StartTimeout bounds launching plus configuring (bootstrap included) when ctx has no earlier
	// deadline. Default DefaultStartTimeout.
	StartTimeout time.Duration
	// Stop bounds the stop sequence of Worker.Stop.
	Stop StopConfig
	// Logger receives the worker's relayed logs and the launcher's. Default slog.Default().
	Logger *slog.Logger
}

// DefaultStartTimeout bounds a worker's launch and configuration.
const DefaultStartTimeout = 60 * time.Second

// Validate checks the configuration.
func (c WorkerConfig) Validate() error {
	var errs []error
	if c.StartTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: StartTimeout: negative (%v)", ErrInvalidConfig, c.StartTimeout))
	}
	errs = append(errs, c.Node.Validate(), c.Stop.validate("Stop"))
	return errors.Join(errs...)
}

// Worker is one running worker process together with a Client for it (hivemind's DHT object after
// run_in_background + wait_until_ready). Stop it with Stop.
type Worker struct {
	*Client
	proc   Process
	info   readyInfo
	stop   StopConfig
	logger *slog.Logger

	stopOnce   sync.Once
	stopMethod StopMethod
}

// readyInfo is what a configured worker reported.
type readyInfo struct {
	peer     PeerID
	maddrs   []string
	nodeID   dht.ID
	reloaded int
}

// StartWorker launches a worker, configures it and returns once its node is ready (host listening,
// bootstrap finished). A bootstrap failure is returned as the worker reported it (errors.Is(err,
// dht.ErrBootstrapFailed)) and leaves no process behind.
func StartWorker(ctx context.Context, cfg WorkerConfig) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "worker"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Launcher == nil {
		l, err := NewExecLauncher(ExecConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Launcher = l
	}
	cfg.Stop = cfg.Stop.withDefaults()
	p, info, err := startProcess(ctx, cfg.Launcher, cfg.Name, cfg.Node, cfg.StartTimeout, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return &Worker{
		Client: NewClient(p.Conn(), p.Done()),
		proc:   p,
		info:   info,
		stop:   cfg.Stop,
		logger: cfg.Logger.With("worker", cfg.Name),
	}, nil
}

// startProcess launches and configures one worker; on failure nothing is left running and the error
// carries the worker's reason (and its exit reason when it died).
func startProcess(ctx context.Context, l Launcher, name string, node NodeConfig, timeout time.Duration,
	logger *slog.Logger) (Process, readyInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p, err := l.Launch(ctx, LaunchSpec{Name: name, Logger: logger})
	if err != nil {
		if !errors.Is(err, ErrStartFailed) {
			err = fmt.Errorf("%w: %s: %w", ErrStartFailed, name, err)
		}
		return nil, readyInfo{}, err
	}
	resp, err := NewClient(p.Conn(), p.Done()).configure(ctx, node)
	if err != nil {
		// A worker that could not configure itself is of no use: kill it without ceremony.
		kctx, kcancel := context.WithCancel(context.Background())
		kcancel()
		stopProcess(kctx, p, StopConfig{}.withDefaults(), logger)
		if reason := p.ExitReason(); reason != nil && errors.Is(err, ErrWorkerGone) {
			err = fmt.Errorf("%w (worker exited: %w)", err, reason)
		}
		return nil, readyInfo{}, fmt.Errorf("%w: %s: %w", ErrStartFailed, name, err)
	}
	info := readyInfo{
		peer:     PeerID{Raw: dht.PeerID(resp.GetPeer().GetPeerId()), Base58: resp.GetPeer().GetPeerIdB58()},
		maddrs:   resp.GetPeer().GetVisibleMaddrs(),
		reloaded: int(resp.GetReloadedRecords()),
	}
	if id, err := dht.IDFromBytes(resp.GetNodeId()); err == nil {
		info.nodeID = id
	}
	return p, info, nil
}

// PID is the worker's process ID.
func (w *Worker) PID() int { return w.proc.PID() }

// Done is closed when the worker process has exited.
func (w *Worker) Done() <-chan struct{} { return w.proc.Done() }

// ExitReason is why the process ended (nil for a clean exit); valid after Done.
func (w *Worker) ExitReason() error { return w.proc.ExitReason() }

// ID is the worker's peer ID as reported when it became ready.
func (w *Worker) ID() PeerID { return w.info.peer }

// NodeID is the worker's DHT node ID.
func (w *Worker) NodeID() dht.ID { return w.info.nodeID }

// Maddrs are the visible multiaddrs reported when the worker became ready.
func (w *Worker) Maddrs() []string { return append([]string(nil), w.info.maddrs...) }

// ReloadedRecords is the number of persisted records the worker reloaded at start.
func (w *Worker) ReloadedRecords() int { return w.info.reloaded }

// Stop runs the stop sequence (Shutdown RPC → SIGTERM → SIGKILL → release) and reports how the worker
// ended. ctx can only shorten the sequence. Later calls return the first result.
func (w *Worker) Stop(ctx context.Context) StopMethod {
	w.stopOnce.Do(func() {
		w.stopMethod = stopProcess(ctx, w.proc, w.stop, w.logger)
	})
	return w.stopMethod
}
