package ipc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
)

// eventLog records a pool's events for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	notify chan struct{}
}

func newEventLog() *eventLog { return &eventLog{notify: make(chan struct{}, 1)} }

func (l *eventLog) hook(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// waitFor polls the log (woken by each event) until match holds for some event, or ctx ends.
func (l *eventLog) waitFor(ctx context.Context, t testing.TB, what string, match func(Event) bool) Event {
	t.Helper()
	for {
		for _, e := range l.all() {
			if match(e) {
				return e
			}
		}
		select {
		case <-l.notify:
		case <-ctx.Done():
			t.Fatalf("no %s event before the deadline; events: %v", what, l.all())
		}
	}
}

func ofType[T Event](l *eventLog) []T {
	var out []T
	for _, e := range l.all() {
		if te, ok := e.(T); ok {
			out = append(out, te)
		}
	}
	return out
}

// failingLauncher never manages to start a worker.
type failingLauncher struct{ launches atomic.Int32 }

func (l *failingLauncher) Launch(context.Context, LaunchSpec) (Process, error) {
	n := l.launches.Add(1)
	return nil, fmt.Errorf("exec: no such file (launch %d)", n)
}

func TestPoolBacksOffThenGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &failingLauncher{}
		events := newEventLog()
		p, err := NewPool(PoolConfig{
			Name:      "flaky",
			Backoff:   BackoffConfig{Initial: time.Second, Max: 3 * time.Second, Multiplier: 2, Jitter: 0.1},
			Intensity: IntensityConfig{MaxRestarts: 3, Period: time.Minute},
			EventHook: events.hook,
			Logger:    testLogger(t),
		}, l)
		require.NoError(t, err)
		start := time.Now()
		err = p.Serve(t.Context())
		elapsed := time.Since(start)

		var gave *GaveUpError
		require.ErrorAs(t, err, &gave)
		assert.ErrorIs(t, err, ErrGaveUp)
		assert.ErrorIs(t, err, ErrStartFailed, "the last reason is wrapped")
		assert.Equal(t, "flaky-1", gave.Slot)
		assert.Len(t, gave.Reasons, 4)
		assert.Contains(t, gave.Reasons[3], "launch 4")
		assert.Contains(t, err.Error(), "flaky-1")
		assert.Equal(t, int32(4), l.launches.Load(), "one start and 3 restarts")

		backoffs := ofType[EventBackoff](events)
		require.Len(t, backoffs, 3)
		var total time.Duration
		for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
			assert.InDelta(t, float64(want), float64(backoffs[i].Delay), 0.1*float64(want)+1, "backoff %d", i)
			assert.Equal(t, i+1, backoffs[i].Restarts)
			total += backoffs[i].Delay
		}
		assert.Equal(t, total, elapsed, "virtual time passes only in backoff")
		assert.Len(t, ofType[EventStartFailed](events), 4)
		assert.Len(t, ofType[EventGaveUp](events), 1)

		st := p.Status().Slots[0]
		assert.Equal(t, SlotFailed, st.State)
		assert.Equal(t, 3, st.Restarts)
		assert.Contains(t, st.Error, "gave up")
		assert.Contains(t, st.LastExit, "launch 4")

		_, err = p.Client(0, ClientOptions{}).Get(t.Context(), dht.RawKey([]byte("k")), dht.GetOptions{})
		assert.ErrorIs(t, err, ErrGaveUp)
	})
}

func TestPoolIntensityWindowSlides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &failingLauncher{}
		events := newEventLog()
		ctx, cancel := context.WithCancel(t.Context())
		p, err := NewPool(PoolConfig{
			Workers:   2,
			Backoff:   BackoffConfig{Initial: 2 * time.Second, Max: 2 * time.Second, Jitter: -1},
			Intensity: IntensityConfig{MaxRestarts: 1, Period: time.Second},
			EventHook: events.hook,
			Logger:    testLogger(t),
		}, l)
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() { done <- p.Serve(ctx) }()
		time.Sleep(time.Minute) // virtual: 2 slots × 30 restarts, each alone in its window
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)
		assert.Empty(t, ofType[EventGaveUp](events))
		assert.GreaterOrEqual(t, l.launches.Load(), int32(58))
		for _, b := range ofType[EventBackoff](events) {
			assert.Equal(t, 2*time.Second, b.Delay, "no jitter")
		}
		for _, s := range p.Status().Slots {
			assert.Equal(t, SlotStopped, s.State)
		}
	})
}

func TestPoolRestartPolicies(t *testing.T) {
	tests := []struct {
		name        string
		policy      RestartPolicy
		wantRestart bool
	}{
		{name: "always restarts a clean exit", policy: RestartAlways, wantRestart: true},
		{name: "on-failure leaves a clean exit down", policy: RestartOnFailure, wantRestart: false},
		{name: "never restarts", policy: RestartNever, wantRestart: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			events := newEventLog()
			p, err := StartPool(ctx, PoolConfig{
				Restart:   tt.policy,
				Backoff:   BackoffConfig{Initial: time.Millisecond},
				EventHook: events.hook,
				Logger:    testLogger(t),
			}, inprocLauncher{newNode: newFakeNode})
			require.NoError(t, err)
			defer p.Shutdown(ctx)
			// The worker exits cleanly; the reply may be lost as it goes.
			if err := p.Client(0, ClientOptions{}).Shutdown(ctx); err != nil {
				require.ErrorIs(t, err, ErrWorkerGone)
			}
			exited := events.waitFor(ctx, t, "exited", func(e Event) bool { _, ok := e.(EventExited); return ok })
			assert.NoError(t, exited.(EventExited).Reason)
			if tt.wantRestart {
				events.waitFor(ctx, t, "second ready", func(e Event) bool { _, ok := e.(EventReady); return ok && len(ofType[EventReady](events)) == 2 })
				require.NoError(t, p.WaitReady(ctx))
				assert.Equal(t, 1, p.Status().Slots[0].Restarts)
				return
			}
			events.waitFor(ctx, t, "stopped", func(e Event) bool { _, ok := e.(EventStopped); return ok })
			assert.Equal(t, SlotStopped, p.Status().Slots[0].State)
			_, err = p.Client(0, ClientOptions{WaitReady: true}).PeerID(ctx)
			assert.ErrorIs(t, err, ErrStopped)
		})
	}
}

// execPool starts a pool of re-executed test workers with fast health checks.
func execPool(t *testing.T, ctx context.Context, n int, events *eventLog, mut func(*PoolConfig)) *Pool {
	t.Helper()
	cfg := PoolConfig{
		Workers:   n,
		StateDir:  t.TempDir(),
		Backoff:   BackoffConfig{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond},
		Health:    HealthConfig{Interval: 100 * time.Millisecond, Timeout: 300 * time.Millisecond, Failures: 2},
		Stop:      StopConfig{ShutdownTimeout: time.Second, TermTimeout: time.Second, KillTimeout: 5 * time.Second},
		EventHook: events.hook,
		Logger:    testLogger(t),
	}
	if mut != nil {
		mut(&cfg)
	}
	p, err := StartPool(ctx, cfg, selfLauncher(t))
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = p.Shutdown(sctx)
	})
	return p
}

func TestPoolRestartsAKilledWorkerWithItsIdentity(t *testing.T) {
	ctx := testCtx(t)
	events := newEventLog()
	p := execPool(t, ctx, 1, events, nil)
	before := p.Status().Slots[0]
	require.Equal(t, SlotRunning, before.State)
	client := p.Client(0, ClientOptions{})

	key := dht.RawKey([]byte("acked"))
	res, err := client.Store(ctx, dht.StoreItem{Key: key, Value: rawMsgpack(t, 42), Expiration: 4e9})
	require.NoError(t, err)
	require.True(t, res.Stored)

	// An in-flight call when the worker dies returns a typed error well within its deadline.
	callErr := make(chan error, 1)
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	go func() {
		_, err := client.Get(callCtx, dht.RawKey([]byte("hang")), dht.GetOptions{})
		callErr <- err
	}()
	waitForCondition(ctx, t, "call in flight", func() bool {
		st, err := client.Stats(ctx)
		return err == nil && st.ConnectedPeers == 1 // the fake node counts hanging calls there
	})
	killedAt := time.Now()
	require.NoError(t, syscall.Kill(before.PID, syscall.SIGKILL))
	select {
	case err := <-callErr:
		assert.ErrorIs(t, err, ErrWorkerGone)
		assert.Less(t, time.Since(killedAt), 5*time.Second)
	case <-ctx.Done():
		t.Fatal("in-flight call did not return")
	}

	exited := events.waitFor(ctx, t, "exited", func(e Event) bool { _, ok := e.(EventExited); return ok }).(EventExited)
	assert.Equal(t, before.PID, exited.PID)
	assert.EqualError(t, exited.Reason, "signal: killed")
	events.waitFor(ctx, t, "backoff", func(e Event) bool { _, ok := e.(EventBackoff); return ok })

	_, err = client.PeerID(ctx) // fails fast while restarting, or succeeds once it is back
	if err != nil {
		assert.ErrorIs(t, err, ErrRestarting)
	}
	waiting := p.Client(0, ClientOptions{WaitReady: true})
	id, err := waiting.PeerID(ctx)
	require.NoError(t, err)
	assert.Equal(t, before.PeerID, id.Base58, "same identity file, same peer ID")
	got, err := waiting.Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got, "the acknowledged record survived kill -9")

	after := p.Status().Slots[0]
	assert.Equal(t, SlotRunning, after.State)
	assert.Equal(t, 1, after.Restarts)
	assert.Equal(t, "signal: killed", after.LastExit)
	assert.NotEqual(t, before.PID, after.PID)
	assert.Len(t, ofType[EventReady](events), 2)
}

func TestPoolKillsAndRestartsAStoppedWorker(t *testing.T) {
	ctx := testCtx(t)
	events := newEventLog()
	p := execPool(t, ctx, 1, events, nil)
	pid := p.Status().Slots[0].PID
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	u := events.waitFor(ctx, t, "unhealthy kill", func(e Event) bool {
		u, ok := e.(EventUnhealthy)
		return ok && u.Killed
	}).(EventUnhealthy)
	assert.Equal(t, pid, u.PID)
	assert.ErrorIs(t, u.Err, ErrDeadlineExceeded)
	exited := events.waitFor(ctx, t, "exited", func(e Event) bool { _, ok := e.(EventExited); return ok }).(EventExited)
	assert.Contains(t, exited.Reason.Error(), "unhealthy")
	require.NoError(t, p.Client(0, ClientOptions{WaitReady: true}).Health(ctx))
	st := p.Status().Slots[0]
	assert.NotEqual(t, pid, st.PID)
	assert.Equal(t, 1, st.Restarts)
	assert.False(t, processExists(pid), "the stopped worker was killed and reaped")
}

func TestPoolShutdownReportsKilledWorkers(t *testing.T) {
	ctx := testCtx(t)
	events := newEventLog()
	p := execPool(t, ctx, 2, events, func(c *PoolConfig) {
		c.Health.Interval = -1 // no health checks: the stopped worker is found by the stop sequence
		// A generous Shutdown bound: the running worker must stop gracefully even on a loaded
		// machine under -race; the stopped one is killed once both bounds have passed.
		c.Stop = StopConfig{ShutdownTimeout: 2 * time.Second, TermTimeout: 200 * time.Millisecond}
	})
	st := p.Status()
	stopped := st.Slots[1].PID
	require.NoError(t, syscall.Kill(stopped, syscall.SIGSTOP))
	report, err := p.Shutdown(ctx)
	require.NoError(t, err)
	require.Len(t, report.Slots, 2)
	assert.Equal(t, StoppedGracefully, report.Slots[0].Method)
	killed := report.Killed()
	require.Len(t, killed, 1)
	assert.Equal(t, SlotStop{Name: "worker-2", PID: stopped, Method: StoppedKilled}, killed[0])
	for _, s := range st.Slots {
		assert.False(t, processExists(s.PID))
	}
	assert.Len(t, ofType[EventStopped](events), 2)
}

func TestPoolBootstrapsFromItsFirstSlot(t *testing.T) {
	ctx := testCtx(t)
	events := newEventLog()
	p := execPool(t, ctx, 3, events, func(c *PoolConfig) { c.BootstrapFromPool = true })
	st := p.Status()
	starts := ofType[EventStarting](events)
	require.Len(t, starts, 3)
	assert.Empty(t, starts[0].InitialPeers)
	for _, s := range starts {
		if s.SlotIndex > 0 {
			assert.Contains(t, s.InitialPeers, st.Slots[0].Maddrs[0])
		}
	}
	for _, s := range st.Slots {
		assert.DirExists(t, filepath.Join(p.cfg.StateDir, s.Name))
	}
}

func TestPoolDoesNotLeakFDsAcrossRestarts(t *testing.T) {
	restarts := 100
	if testing.Short() {
		restarts = 20
	}
	// Each restart is a real exec of the (race-enabled) test binary: give the loop its own, larger bound.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	events := newEventLog()
	p := execPool(t, ctx, 1, events, func(c *PoolConfig) {
		c.Intensity = IntensityConfig{MaxRestarts: -1}
		c.Backoff = BackoffConfig{Initial: time.Millisecond, Max: time.Millisecond}
		c.Health.Interval = -1
	})
	restart := func(i int) {
		pid := p.Status().Slots[0].PID
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		waitForCondition(ctx, t, fmt.Sprintf("restart %d", i), func() bool {
			s := p.Status().Slots[0]
			return s.State == SlotRunning && s.PID != pid
		})
	}
	start := time.Now()
	restart(0) // warm up lazily opened descriptors
	baseline := countFDs(t)
	for i := range restarts {
		restart(i + 1)
	}
	t.Logf("%d restarts in %v", restarts+1, time.Since(start))
	assert.LessOrEqual(t, countFDs(t), baseline+2, "fds after %d restarts", restarts)
	assert.Equal(t, restarts+1, p.Status().Slots[0].Restarts)
}

func countFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(entries)
}

// processExists reports whether pid is a live (not zombie) process.
func processExists(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// waitForCondition polls cond every 10 ms until it holds or ctx ends.
func waitForCondition(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
