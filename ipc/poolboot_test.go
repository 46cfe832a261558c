package ipc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// memLauncher launches workers that exist only in memory: no process, no go-plugin, no gRPC server,
// so a pool of them runs in a testing/synctest bubble, in virtual time. A worker answers Configure
// (after configure, and reports the visible multiaddr "/mem/<slot name>"), AddPeers (it records the
// multiaddrs; every peer answers unless the launcher's addPeersFail says otherwise) and Shutdown (it
// exits cleanly); other calls fail with Unimplemented, so health checks must be off.
type memLauncher struct {
	configure time.Duration

	mu    sync.Mutex
	pid   int
	procs map[string]*memProcess // the last worker of each slot
	// failNext makes the next n launches of a slot fail.
	failNext map[string]int
	// stall makes the next launch of a slot take that long, ignoring its ctx, then fail.
	stall map[string]time.Duration
	// addPeersFail makes the next n AddPeers calls to a slot's workers fail.
	addPeersFail map[string]int
}

func newMemLauncher(configure time.Duration) *memLauncher {
	return &memLauncher{
		configure: configure, procs: map[string]*memProcess{},
		failNext: map[string]int{}, stall: map[string]time.Duration{}, addPeersFail: map[string]int{},
	}
}

func (l *memLauncher) Launch(ctx context.Context, spec LaunchSpec) (Process, error) {
	l.mu.Lock()
	fail := l.failNext[spec.Name] > 0
	if fail {
		l.failNext[spec.Name]--
	}
	stall := l.stall[spec.Name]
	delete(l.stall, spec.Name)
	l.pid++
	p := &memProcess{name: spec.Name, pid: 1000 + l.pid, configure: l.configure, done: make(chan struct{}), l: l}
	if !fail && stall == 0 {
		l.procs[spec.Name] = p
	}
	l.mu.Unlock()
	if stall > 0 {
		time.Sleep(stall) // a launcher that overruns its ctx
		return nil, fmt.Errorf("launch of %s stalled for %v", spec.Name, stall)
	}
	if fail {
		return nil, fmt.Errorf("launch of %s failed", spec.Name)
	}
	return p, nil
}

// kill SIGKILLs the current worker of every named slot (every slot when none is named).
func (l *memLauncher) kill(t testing.TB, names ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(names) == 0 {
		for name := range l.procs {
			names = append(names, name)
		}
	}
	for _, name := range names {
		require.NoError(t, l.procs[name].Signal(syscall.SIGKILL), name)
	}
}

// addedPeers returns the multiaddrs of each AddPeers call the current worker of a slot answered.
func (l *memLauncher) addedPeers(slot string) [][]string {
	l.mu.Lock()
	p := l.procs[slot]
	l.mu.Unlock()
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.added)
}

// memProcess is one in-memory worker.
type memProcess struct {
	name      string
	pid       int
	configure time.Duration
	l         *memLauncher

	mu    sync.Mutex
	added [][]string // the maddrs of each AddPeers call answered

	once   sync.Once
	reason error
	done   chan struct{}
}

func (p *memProcess) exit(reason error) {
	p.once.Do(func() {
		p.reason = reason
		close(p.done)
	})
}

func (p *memProcess) Conn() grpc.ClientConnInterface { return memConn{p: p} }
func (p *memProcess) PID() int                       { return p.pid }
func (p *memProcess) Done() <-chan struct{}          { return p.done }
func (p *memProcess) ExitReason() error              { return p.reason }
func (p *memProcess) Release()                       { p.exit(errors.New("signal: killed")) }

func (p *memProcess) Signal(sig syscall.Signal) error { return fakeSignal(p.done, sig, p.exit) }

// memConn serves a memProcess's unary calls.
type memConn struct{ p *memProcess }

func (c memConn) Invoke(ctx context.Context, method string, req, reply any, _ ...grpc.CallOption) error {
	switch method {
	case ipcpb.Worker_Configure_FullMethodName:
		t := time.NewTimer(c.p.configure)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-c.p.done:
			return status.Error(codes.Unavailable, "worker exited")
		}
		reply.(*ipcpb.ConfigureResponse).Peer = &ipcpb.PeerInfo{
			PeerIdB58: "peer-" + c.p.name, VisibleMaddrs: []string{memMaddr(c.p.name)},
		}
		return nil
	case ipcpb.Worker_AddPeers_FullMethodName:
		c.p.l.mu.Lock()
		fail := c.p.l.addPeersFail[c.p.name] > 0
		if fail {
			c.p.l.addPeersFail[c.p.name]--
		}
		c.p.l.mu.Unlock()
		if fail {
			return status.Error(codes.Internal, "memConn: AddPeers failed as told")
		}
		maddrs := req.(*ipcpb.AddPeersRequest).GetMaddrs()
		c.p.mu.Lock()
		c.p.added = append(c.p.added, slices.Clone(maddrs))
		c.p.mu.Unlock()
		resp := reply.(*ipcpb.AddPeersResponse)
		resp.Answered = uint32(len(maddrs))
		for _, m := range maddrs {
			resp.Peers = append(resp.Peers, &ipcpb.AddPeerOutcome{Maddr: m, Connected: true})
		}
		return nil
	case ipcpb.Worker_Shutdown_FullMethodName:
		c.p.exit(nil)
		return nil
	}
	return status.Errorf(codes.Unimplemented, "memConn: %s", method)
}

func (memConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "memConn: no streams")
}

func memMaddr(slot string) string { return "/mem/" + slot }

// memPool serves a pool of in-memory workers in the background (inside a synctest bubble); cleanup
// shuts it down (Shutdown returns once Serve has).
func memPool(t *testing.T, l *memLauncher, cfg PoolConfig) *Pool {
	t.Helper()
	p := newMemPool(t, l, cfg)
	serveInBackground(t, p)
	return p
}

// newMemPool makes a pool of in-memory workers, without health checks, not served yet.
func newMemPool(t *testing.T, l *memLauncher, cfg PoolConfig) *Pool {
	t.Helper()
	cfg.Health.Interval = -1
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	p, err := NewPool(cfg, l)
	require.NoError(t, err)
	return p
}

// serveInBackground serves p until cleanup shuts it down.
func serveInBackground(t *testing.T, p *Pool) {
	go func() { _ = p.Serve(context.Background()) }()
	t.Cleanup(func() { _, _ = p.Shutdown(context.Background()) })
}

// startsSince returns the EventStarting events from the from-th event on.
func startsSince(l *eventLog, from int) []EventStarting {
	var out []EventStarting
	for _, e := range l.all()[from:] {
		if s, ok := e.(EventStarting); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestPoolRestartAfterKillAllBootstrapsFromOneSlot: after every worker of a BootstrapFromPool pool
// dies at once, all slots restart at the same moment while none runs. One of them (the seed claim's
// holder) starts alone; the others wait until it is ready and bootstrap from it, so the pool forms
// one swarm again instead of N lone nodes.
func TestPoolRestartAfterKillAllBootstrapsFromOneSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLauncher(time.Second)
		events := newEventLog()
		p := memPool(t, l, PoolConfig{
			Workers: 4, Name: "boot", BootstrapFromPool: true,
			// No jitter: every slot restarts at the same virtual instant.
			Backoff:   BackoffConfig{Initial: 100 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: -1},
			EventHook: events.hook,
		})
		require.NoError(t, p.WaitReady(t.Context()))
		first := startsSince(events, 0)
		require.Len(t, first, 4)
		assert.Equal(t, 0, first[0].SlotIndex, "slot 0 starts first")
		assert.Empty(t, first[0].InitialPeers)
		for _, s := range first[1:] {
			assert.Contains(t, s.InitialPeers, memMaddr("boot-1"), "%s bootstraps from slot 0", s.SlotName)
		}

		seen := len(events.all())
		l.kill(t)
		synctest.Wait() // every slot noticed and backs off
		for _, st := range p.Status().Slots {
			require.Equal(t, SlotBackoff, st.State, st.Name)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		require.NoError(t, p.WaitReady(t.Context()))

		restarts := startsSince(events, seen)
		require.Len(t, restarts, 4, "one restart per slot")
		var alone []EventStarting
		for _, s := range restarts {
			if len(s.InitialPeers) == 0 {
				alone = append(alone, s)
			}
		}
		require.Len(t, alone, 1, "exactly one slot restarts alone: %v", restarts)
		assert.Equal(t, alone[0], restarts[0], "the one alone is the first to start")
		for _, s := range restarts[1:] {
			assert.Contains(t, s.InitialPeers, memMaddr(alone[0].SlotName),
				"%s bootstraps from the slot that restarted first", s.SlotName)
		}
	})
}

// TestPoolSeedThatFailsToStartHandsOver: when the slot holding the seed claim fails to start, the
// claim is freed at once: another waiting slot starts alone and the rest (the failed slot's next
// attempt included) bootstrap from it. Nobody waits for the failed slot's backoff.
func TestPoolSeedThatFailsToStartHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLauncher(time.Second)
		l.failNext["boot-1"] = 1
		events := newEventLog()
		p := memPool(t, l, PoolConfig{
			Workers: 3, Name: "boot", BootstrapFromPool: true,
			Backoff:   BackoffConfig{Initial: time.Minute, Max: time.Minute, Jitter: -1},
			EventHook: events.hook,
		})
		start := time.Now()
		require.NoError(t, p.slots[1].waitRunning(t.Context()))
		require.NoError(t, p.slots[2].waitRunning(t.Context()))
		assert.Less(t, time.Since(start), time.Minute, "slots 2 and 3 did not wait for slot 1's backoff")
		require.NoError(t, p.WaitReady(t.Context()))

		starts := startsSince(events, 0)
		require.Len(t, starts, 4)
		assert.Equal(t, 0, starts[0].SlotIndex)
		assert.Empty(t, starts[0].InitialPeers, "slot 1's failed attempt")
		seed := starts[1]
		assert.NotEqual(t, 0, seed.SlotIndex)
		assert.Empty(t, seed.InitialPeers, "the next seed starts alone")
		for _, s := range starts[2:] {
			assert.Contains(t, s.InitialPeers, memMaddr(seed.SlotName), "%s (attempt %d)", s.SlotName, s.Attempt)
		}
	})
}

// TestPoolBootstrapWaitIsBounded: a slot waiting for the seed claim's holder waits at most twice
// StartTimeout (here the holder's launcher overruns its ctx), then starts alone with a warning.
func TestPoolBootstrapWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLauncher(time.Second)
		l.stall["boot-1"] = time.Hour
		events := newEventLog()
		logs := &lockedBuffer{}
		const startTimeout = 10 * time.Second
		p := memPool(t, l, PoolConfig{
			Workers: 3, Name: "boot", BootstrapFromPool: true, StartTimeout: startTimeout,
			Backoff:   BackoffConfig{Initial: time.Second, Max: time.Second, Jitter: -1},
			EventHook: events.hook, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		})
		start := time.Now()
		require.NoError(t, p.slots[1].waitRunning(t.Context()))
		require.NoError(t, p.slots[2].waitRunning(t.Context()))
		starts := startsSince(events, 0)
		require.Len(t, starts, 3)
		for _, s := range starts[1:] {
			assert.Empty(t, s.InitialPeers, "%s fell back to starting alone", s.SlotName)
			assert.Equal(t, 2*startTimeout, s.At.Sub(start), "%s waited for the bound", s.SlotName)
		}
		warned := 0
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "starting alone") {
				warned++
			}
		}
		assert.Equal(t, 2, warned, "each slot that fell back logged a warning:\n%s", logs.String())

		// Once its launch gives up, slot 1 restarts from the others.
		require.NoError(t, p.WaitReady(t.Context()))
		last := startsSince(events, 0)
		assert.Contains(t, last[len(last)-1].InitialPeers, memMaddr("boot-2"))
	})
}

// lockedBuffer is a log destination shared by goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPoolStatusShowsATransitionBeforeItsEvent: whatever the event, Status read from the hook
// already shows the transition the event reports (Event's ordering contract).
func TestPoolStatusShowsATransitionBeforeItsEvent(t *testing.T) {
	type seen struct {
		e  Event
		st SlotStatus
	}
	run := func(t *testing.T, l *memLauncher, cfg PoolConfig, drive func(p *Pool)) []seen {
		var (
			mu  sync.Mutex
			out []seen
			p   *Pool
		)
		cfg.EventHook = func(e Event) {
			st := p.Status().Slots[e.Index()]
			mu.Lock()
			out = append(out, seen{e: e, st: st})
			mu.Unlock()
		}
		p = newMemPool(t, l, cfg)
		serveInBackground(t, p) // after p is set: the hook reads it
		drive(p)
		_, _ = p.Shutdown(context.Background())
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), out...)
	}
	check := func(t *testing.T, got []seen, want ...string) {
		t.Helper()
		var kinds []string
		for _, g := range got {
			kind := fmt.Sprintf("%T", g.e)
			kinds = append(kinds, strings.TrimPrefix(kind, "ipc."))
			st := g.st
			switch e := g.e.(type) {
			case EventStarting:
				assert.Equal(t, SlotStarting, st.State, "%v", e)
			case EventReady:
				assert.Equal(t, SlotRunning, st.State, "%v", e)
				assert.Equal(t, e.PID, st.PID, "%v", e)
			case EventStartFailed:
				assert.Equal(t, SlotBackoff, st.State, "%v", e)
				assert.Equal(t, e.Err.Error(), st.LastExit, "%v", e)
				assert.Zero(t, st.PID, "%v", e)
			case EventExited:
				assert.Equal(t, SlotBackoff, st.State, "%v", e)
				assert.Equal(t, errString(e.Reason), st.LastExit, "%v", e)
				assert.Zero(t, st.PID, "%v", e)
			case EventBackoff:
				assert.Equal(t, SlotBackoff, st.State, "%v", e)
				assert.Equal(t, e.Restarts, st.Restarts, "%v", e)
			case EventGaveUp:
				assert.Equal(t, SlotFailed, st.State, "%v", e)
				assert.Equal(t, e.Err.Error(), st.Error, "%v", e)
			case EventStopped:
				assert.Equal(t, SlotStopped, st.State, "%v", e)
			default:
				t.Errorf("unexpected event %v", e)
			}
		}
		assert.Equal(t, want, kinds)
	}
	backoff := BackoffConfig{Initial: time.Second, Max: time.Second, Jitter: -1}

	t.Run("start failure, exits, give up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newMemLauncher(time.Second)
			l.failNext["order-1"] = 1
			got := run(t, l, PoolConfig{Name: "order", Backoff: backoff, Intensity: IntensityConfig{MaxRestarts: 2, Period: time.Hour}},
				func(p *Pool) {
					for range 2 {
						time.Sleep(time.Minute)
						synctest.Wait()
						require.Equal(t, SlotRunning, p.Status().Slots[0].State)
						l.kill(t)
					}
					synctest.Wait()
					require.Equal(t, SlotFailed, p.Status().Slots[0].State)
				})
			check(t, got,
				"EventStarting", "EventStartFailed", "EventBackoff",
				"EventStarting", "EventReady", "EventExited", "EventBackoff",
				"EventStarting", "EventReady", "EventExited", "EventGaveUp")
		})
	})
	t.Run("shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newMemLauncher(time.Second)
			got := run(t, l, PoolConfig{Name: "order"}, func(p *Pool) {
				require.NoError(t, p.WaitReady(t.Context()))
			})
			check(t, got, "EventStarting", "EventReady", "EventStopped")
		})
	})
	t.Run("restart never", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newMemLauncher(time.Second)
			got := run(t, l, PoolConfig{Name: "order", Restart: RestartNever}, func(p *Pool) {
				require.NoError(t, p.WaitReady(t.Context()))
				l.kill(t)
				synctest.Wait()
			})
			check(t, got, "EventStarting", "EventReady", "EventExited", "EventStopped")
		})
	})
}
