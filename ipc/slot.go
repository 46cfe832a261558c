package ipc

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

// maxReasons is how many exit reasons a slot remembers for its GaveUpError.
const maxReasons = 5

// firstHealthCheck is the delay of a worker's first health check (when Health.Interval is longer).
const firstHealthCheck = 250 * time.Millisecond

// slotSnap is an immutable snapshot of a slot, published by the slot's goroutine; changed is closed
// when the next snapshot replaces it, so readers can wait for a transition.
type slotSnap struct {
	state      SlotState
	since      time.Time
	proc       Process // the running worker, in SlotRunning
	pid        int
	peer       PeerID
	maddrs     []string
	restarts   int
	lastExit   string
	lastExitAt time.Time
	err        error
	stats      Stats
	statsAt    time.Time
	// alone: the running worker started with no pool peer (BootstrapFromPool, no other slot
	// running) and has not been handed one yet (see joiner).
	alone   bool
	changed chan struct{}
}

// slot is one supervised worker position of a pool. Its serve goroutine owns every field below snap
// and is the only writer of snap; others read snap.
type slot struct {
	pool  *Pool
	index int
	name  string
	log   *slog.Logger
	snap  atomic.Pointer[slotSnap]

	// Owned by serve.
	attempt     int
	consecutive int
	reasons     []string
	lastReason  error
	intensity   intensity
	stopped     SlotStop // read by Pool.Serve after serve returned
}

func newSlot(p *Pool, index int, name string) *slot {
	s := &slot{
		pool:      p,
		index:     index,
		name:      name,
		log:       p.cfg.Logger.With("slot", name),
		intensity: intensity{cfg: p.cfg.Intensity},
		stopped:   SlotStop{Name: name, Method: StoppedAlreadyExited},
	}
	s.snap.Store(&slotSnap{state: SlotIdle, since: p.cfg.Clock.Now(), changed: make(chan struct{})})
	return s
}

// publish replaces the snapshot with a modified copy and wakes the waiters of the old one.
func (s *slot) publish(mut func(*slotSnap)) {
	old := s.snap.Load()
	next := *old
	next.changed = make(chan struct{})
	mut(&next)
	if next.state != old.state {
		next.since = s.pool.cfg.Clock.Now()
	}
	s.snap.Store(&next)
	close(old.changed)
	if next.state != old.state && s.pool.cfg.BootstrapFromPool {
		s.pool.seed.notify() // slots waiting for a slot to bootstrap from look again
	}
}

func (s *slot) header() EventHeader {
	return EventHeader{SlotName: s.name, SlotIndex: s.index, At: s.pool.cfg.Clock.Now()}
}

// emit hands e to the event hook. Call it after publishing the transition e reports, so that a
// hook (or whoever it hands e to) reading Status sees that transition.
func (s *slot) emit(e Event) { s.pool.cfg.EventHook(e) }

// serve is the slot's life: launch, watch, restart by policy, until ctx is done (nil), the policy
// leaves the slot down (nil) or the intensity is exceeded (*GaveUpError).
func (s *slot) serve(ctx context.Context) error {
	cfg := s.pool.cfg
	defer s.pool.seed.release(s.index) // a slot that ends before its first start
	for {
		s.attempt++
		node, alone, err := s.nodeConfig(ctx)
		if err != nil { // ctx ended while waiting for a slot to bootstrap from
			s.finish(SlotStopped, nil)
			return nil
		}
		s.publish(func(st *slotSnap) { st.state, st.proc, st.pid, st.alone = SlotStarting, nil, 0, false })
		s.emit(EventStarting{EventHeader: s.header(), Attempt: s.attempt, InitialPeers: node.InitialPeers})
		t0 := cfg.Clock.Now()
		p, info, err := startProcess(ctx, s.pool.launcher, s.name, node, cfg.StartTimeout, cfg.Logger)
		ready := cfg.Clock.Now()
		if err == nil {
			s.publish(func(st *slotSnap) {
				st.state, st.proc, st.pid = SlotRunning, p, p.PID()
				st.peer, st.maddrs, st.alone = info.peer, info.maddrs, alone
			})
		}
		// Ready or failed, the attempt is over: slots waiting to bootstrap look again (after the
		// Running snapshot, so that they find this slot rather than a free claim).
		s.pool.seed.release(s.index)
		if err != nil && ctx.Err() != nil {
			s.finish(SlotStopped, nil)
			return nil
		}
		var reason error
		uptime := time.Duration(0)
		if err != nil {
			reason = err
			s.log.Warn("worker failed to start", "error", err)
			s.recordExit(reason)
			s.emit(EventStartFailed{EventHeader: s.header(), Err: err})
		} else {
			s.log.Info("worker ready", "pid", p.PID(), "peer_id", info.peer.Base58, "maddrs", info.maddrs)
			s.emit(EventReady{
				EventHeader: s.header(), PID: p.PID(), PeerID: info.peer, Maddrs: info.maddrs,
				StartDuration: ready.Sub(t0), ReloadedRecords: info.reloaded,
			})
			var stop bool
			reason, stop = s.watch(ctx, p)
			if stop {
				s.publish(func(st *slotSnap) { st.state = SlotStopping })
				m := stopProcess(s.pool.hurry, p, cfg.Stop, s.log)
				s.stopped = SlotStop{Name: s.name, PID: p.PID(), Method: m}
				s.finish(SlotStopped, nil)
				s.emit(EventStopped{EventHeader: s.header(), PID: p.PID(), Method: m})
				return nil
			}
			uptime = cfg.Clock.Now().Sub(ready)
			s.log.Warn("worker exited", "pid", p.PID(), "reason", errString(reason), "uptime", uptime)
			s.recordExit(reason)
			s.emit(EventExited{EventHeader: s.header(), PID: p.PID(), Reason: reason, Uptime: uptime})
		}

		if cfg.Restart == RestartNever || (cfg.Restart == RestartOnFailure && reason == nil) {
			s.finish(SlotStopped, nil)
			s.emit(EventStopped{EventHeader: s.header(), Method: StoppedAlreadyExited})
			return nil
		}
		if uptime >= cfg.Backoff.ResetAfter {
			s.consecutive = 0
		}
		s.consecutive++
		now := cfg.Clock.Now()
		if !s.intensity.allow(now) {
			gerr := &GaveUpError{
				Slot: s.name, MaxRestarts: cfg.Intensity.MaxRestarts, Period: cfg.Intensity.Period,
				Reasons: slices.Clone(s.reasons), last: s.lastReason,
			}
			s.log.Error("slot gave up", "error", gerr)
			s.finish(SlotFailed, gerr)
			s.emit(EventGaveUp{EventHeader: s.header(), Err: gerr})
			return gerr
		}
		delay := cfg.Backoff.delay(s.consecutive, randFloat())
		s.publish(func(st *slotSnap) { st.state, st.restarts = SlotBackoff, st.restarts+1 })
		s.emit(EventBackoff{EventHeader: s.header(), Delay: delay, Restarts: s.snap.Load().restarts})
		t := cfg.Clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			s.finish(SlotStopped, nil)
			return nil
		}
	}
}

// watch follows a running worker until it exits (its reason: nil for a clean exit), fails its
// health checks (it is killed; the reason says why) or ctx is done (stop). A worker that started
// alone is handed the pool's peers as soon as another slot runs (see joiner).
func (s *slot) watch(ctx context.Context, p Process) (reason error, stop bool) {
	cfg := s.pool.cfg
	client := NewClient(p.Conn(), p.Done())
	j := newJoiner(s, client, s.snap.Load().alone)
	defer j.stop()
	j.look(ctx)
	var tick <-chan time.Time
	var t Timer
	arm := func(d time.Duration) {
		if cfg.Health.Interval > 0 {
			t = cfg.Clock.NewTimer(d)
			tick = t.C()
		}
	}
	// The first check comes soon, so the status shows the node's counters right after start.
	arm(min(cfg.Health.Interval, firstHealthCheck))
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	failures := 0
	for {
		select {
		case <-p.Done():
			reason := p.ExitReason()
			j.stop()                             // before the release: no call outlives the connection
			stopProcess(ctx, p, cfg.Stop, s.log) // releases it
			return reason, false
		case <-ctx.Done():
			return nil, true
		case <-j.changes:
			j.look(ctx)
			continue
		case r := <-j.result:
			j.finish(r)
			continue
		case <-tick:
		}
		hctx, cancel := context.WithTimeout(ctx, cfg.Health.Timeout)
		err := client.Health(hctx)
		var st Stats
		if err == nil {
			st, err = client.Stats(hctx)
		}
		cancel()
		if ctx.Err() != nil {
			return nil, true
		}
		if err == nil {
			failures = 0
			at := cfg.Clock.Now()
			s.publish(func(snap *slotSnap) { snap.stats, snap.statsAt = st, at })
			arm(cfg.Health.Interval)
			continue
		}
		select {
		case <-p.Done(): // it died under the check: report the exit, not the check
			continue
		default:
		}
		failures++
		killed := failures >= cfg.Health.Failures
		s.log.Warn("health check failed", "pid", p.PID(), "failures", failures, "error", err)
		s.emit(EventUnhealthy{EventHeader: s.header(), PID: p.PID(), Err: err, Failures: failures, Killed: killed})
		if killed {
			_ = p.Signal(syscall.SIGKILL)
			j.stop()
			kctx, kcancel := context.WithCancel(context.Background())
			kcancel()
			stopProcess(kctx, p, cfg.Stop, s.log) // SIGKILL again, bounded wait, release
			return fmt.Errorf("unhealthy, killed after %d failed health checks: %w", failures, err), false
		}
		arm(cfg.Health.Interval)
	}
}

// recordExit remembers an exit (or start failure) reason.
func (s *slot) recordExit(reason error) {
	text := errString(reason)
	s.lastReason = reason
	s.reasons = append(s.reasons, text)
	if len(s.reasons) > maxReasons {
		s.reasons = s.reasons[len(s.reasons)-maxReasons:]
	}
	now := s.pool.cfg.Clock.Now()
	s.publish(func(st *slotSnap) {
		// Between workers: backing off until the policy decides otherwise.
		st.state, st.proc, st.pid, st.alone = SlotBackoff, nil, 0, false
		st.lastExit, st.lastExitAt = text, now
	})
}

// finish publishes a terminal state.
func (s *slot) finish(state SlotState, err error) {
	s.publish(func(st *slotSnap) { st.state, st.proc, st.pid, st.err, st.alone = state, nil, 0, err, false })
}

// nodeConfig returns the node configuration of the next start. With BootstrapFromPool its
// InitialPeers also hold the visible multiaddrs of the other slots running at that moment; when none
// runs, the slot starts with the configured peers only if it holds the pool's seed claim, and
// otherwise waits for a slot to bootstrap from (seedClaim has the rule and its bound). alone reports
// a BootstrapFromPool start with no pool peer (the seed, or a slot that waited past the bound). It
// fails only when ctx ends.
func (s *slot) nodeConfig(ctx context.Context) (node NodeConfig, alone bool, err error) {
	cfg := s.pool.cfg
	node = cfg.Node
	node.InitialPeers = slices.Clone(node.InitialPeers)
	if cfg.StateDir != "" {
		node.StateDir = filepath.Join(cfg.StateDir, s.name)
	}
	if cfg.SlotNode != nil {
		node = cfg.SlotNode(s.index, node)
	}
	if !cfg.BootstrapFromPool {
		return node, false, nil
	}
	var bound Timer
	defer func() {
		if bound != nil {
			bound.Stop()
		}
	}()
	for {
		changed := s.pool.seed.next() // before looking: a change after the look closes it
		if maddrs, ok := s.poolPeers(); ok {
			for _, m := range maddrs {
				if !slices.Contains(node.InitialPeers, m) {
					node.InitialPeers = append(node.InitialPeers, m)
				}
			}
			return node, false, nil
		}
		if s.pool.seed.claim(s.index) {
			return node, true, nil
		}
		if bound == nil {
			bound = cfg.Clock.NewTimer(cfg.bootstrapWait())
		}
		select {
		case <-changed:
		case <-bound.C():
			s.log.Warn("no slot became ready to bootstrap from; starting alone",
				"waited", cfg.bootstrapWait(), "seed_slot", s.pool.seed.holder.Load())
			return node, true, nil
		case <-ctx.Done():
			return node, false, ctx.Err()
		}
	}
}

// poolPeers returns the visible multiaddrs of the other slots running now; ok is false when none
// runs.
func (s *slot) poolPeers() (maddrs []string, ok bool) {
	for _, other := range s.pool.slots {
		if other == s {
			continue
		}
		if snap := other.snap.Load(); snap.state == SlotRunning {
			ok = true
			maddrs = append(maddrs, snap.maddrs...)
		}
	}
	return maddrs, ok
}

// waitRunning waits until the slot runs a worker (nil), ended (its error, or ErrStopped) or ctx is
// done.
func (s *slot) waitRunning(ctx context.Context) error {
	for {
		snap := s.snap.Load()
		switch snap.state {
		case SlotRunning:
			return nil
		case SlotFailed:
			return snap.err
		case SlotStopped, SlotStopping:
			return fmt.Errorf("ipc: slot %s: %w", s.name, ErrStopped)
		}
		select {
		case <-snap.changed:
		case <-ctx.Done():
			return ctxError("slot "+s.name+": wait until ready", ctx.Err())
		}
	}
}

func (s *slot) status() SlotStatus {
	snap := s.snap.Load()
	out := SlotStatus{
		Name: s.name, Index: s.index, State: snap.state, Since: snap.since, PID: snap.pid,
		PeerID: snap.peer.Base58, Maddrs: slices.Clone(snap.maddrs), Restarts: snap.restarts,
		LastExit: snap.lastExit, LastExitAt: snap.lastExitAt,
		RoutingTableSize: snap.stats.RoutingTableSize, StoredKeys: snap.stats.StoredKeys,
		ConnectedPeers: snap.stats.ConnectedPeers, StatsAt: snap.statsAt, Alone: snap.alone,
		CachedKeys: snap.stats.CachedKeys, PersistedRecords: snap.stats.PersistedRecords,
		RSSBytes: snap.stats.RSSBytes, HeapBytes: snap.stats.HeapBytes, Goroutines: snap.stats.Goroutines,
		StatsPID: snap.stats.PID,
		Ops:      cloneOps(snap.stats.Ops), RPCs: cloneRPCs(snap.stats.RPCs), Peers: clonePeers(snap.stats.Peers),
		NAT: snap.stats.NAT.clone(),
	}
	if snap.err != nil {
		out.Error = snap.err.Error()
	}
	return out
}

// slotSource gives a slot Client the slot's current worker.
type slotSource struct {
	s    *slot
	wait bool
}

func (src slotSource) conn(ctx context.Context) (grpc.ClientConnInterface, error) {
	s := src.s
	for {
		snap := s.snap.Load()
		switch snap.state {
		case SlotRunning:
			select {
			case <-snap.proc.Done(): // exited; the slot has not noticed yet
			default:
				return snap.proc.Conn(), nil
			}
			// A running snapshot always has its process: recordExit leaves SlotRunning.
		case SlotFailed:
			return nil, fmt.Errorf("slot %s: %w", s.name, snap.err)
		case SlotStopped, SlotStopping:
			return nil, fmt.Errorf("slot %s: %w", s.name, ErrStopped)
		}
		if !src.wait {
			return nil, fmt.Errorf("slot %s is %s: %w", s.name, snap.state, ErrRestarting)
		}
		select {
		case <-snap.changed:
		case <-ctx.Done():
			return nil, ctxError("slot "+s.name+": wait for a worker", ctx.Err())
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
