package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/test/chaos/faults"
)

// crashCode is the exit status of a worker crashing at start.
const crashCode = 7

// startFailures waits until slot i reported n start failures after since, and returns them.
func startFailures(ctx context.Context, r *procRun, i int, since time.Time, n int) []ipc.EventStartFailed {
	r.t.Helper()
	var got []ipc.EventStartFailed
	r.sw.events.waitFor(ctx, func(ipc.Event) bool {
		got = got[:0]
		for _, e := range r.sw.events.all() {
			if x, ok := e.(ipc.EventStartFailed); ok && x.SlotIndex == i && !x.At.Before(since) {
				got = append(got, x)
			}
		}
		return len(got) >= n
	})
	if len(got) < n {
		r.t.Fatalf("slot %d: %d start failures, want %d: %s", i, len(got), n, r.sw.describe())
	}
	return got
}

// requireTypedStartFailure checks a start failure is typed and names its cause.
func requireTypedStartFailure(r *procRun, e ipc.EventStartFailed, cause string) {
	r.t.Helper()
	if !errors.Is(e.Err, ipc.ErrStartFailed) {
		r.t.Errorf("start failure %v does not wrap ipc.ErrStartFailed", e.Err)
	}
	if !strings.Contains(strings.ToLower(e.Err.Error()), cause) {
		r.t.Errorf("start failure %q does not name its cause %q", e.Err, cause)
	}
}

// injectCrashLoopHeals makes a worker crash at every start, lets it fail twice, removes the cause
// and measures the time from the repair to full health.
func injectCrashLoopHeals(ctx context.Context, r *procRun) {
	i := r.pick()
	r.sw.setFaults(i, faults.Faults{ExitAtStart: crashCode})
	at := time.Now()
	if _, err := r.sw.signal(i, syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	for _, e := range startFailures(ctx, r, i, at, 2) {
		requireTypedStartFailure(r, e, fmt.Sprintf("exit status %d", crashCode))
	}
	r.sw.clearFaults(i)
	d := r.recovered(ctx, time.Now())
	r.notes = append(r.notes, fmt.Sprintf("healed-in=%v", d.Round(time.Millisecond)))
}

// injectCrashLoopGivesUp makes a worker crash at every start until its slot gives up.
func injectCrashLoopGivesUp(ctx context.Context, r *procRun) {
	i := r.pick()
	r.sw.setFaults(i, faults.Faults{ExitAtStart: crashCode})
	at := time.Now()
	if _, err := r.sw.signal(i, syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	e := r.sw.events.waitFor(ctx, func(e ipc.Event) bool { x, ok := e.(ipc.EventGaveUp); return ok && x.SlotIndex == i })
	if e == nil {
		r.t.Fatalf("slot %d never gave up: %s", i, r.sw.describe())
	}
	gaveUpIn := time.Since(at)
	var gerr *ipc.GaveUpError
	if err := e.(ipc.EventGaveUp).Err; !errors.As(err, &gerr) || !errors.Is(err, ipc.ErrGaveUp) {
		r.t.Fatalf("give-up error %v is not a *GaveUpError wrapping ErrGaveUp", err)
	}
	name := r.sw.pool.Status().Slots[i].Name
	if gerr.Slot != name || !strings.Contains(gerr.Error(), fmt.Sprintf("exit status %d", crashCode)) {
		r.t.Errorf("give-up error %q should name slot %s and the crash", gerr, name)
	}
	// The event comes just before the slot publishes its failed state.
	if !waitUntil(ctx, 10*time.Second, func() bool { return r.sw.pool.Status().Slots[i].State == ipc.SlotFailed }) {
		r.t.Fatalf("slot %d gave up but its state is %s", i, r.sw.pool.Status().Slots[i].State)
	}
	if _, err := r.call(ctx, i, time.Second); !errors.Is(err, ipc.ErrGaveUp) {
		r.t.Errorf("a call to the failed slot returned %v, want ErrGaveUp", err)
	}
	var others []int
	for j := range r.sw.pool.Len() {
		if j != i {
			others = append(others, j)
		}
	}
	if _, err := r.sw.waitHealthy(ctx, others...); err != nil {
		r.t.Fatal(err)
	}
	r.sw.clearFaults(i)
	r.notes = append(r.notes, fmt.Sprintf("gave-up-in=%v", gaveUpIn.Round(time.Millisecond)))
}

// delayedCalls is the number of parent calls a fault worker is holding in call_delay, read from its
// stats (the fault worker reports it as the RPC counter "chaos_delayed").
func delayedCalls(ctx context.Context, c *ipc.Client) int {
	st, err := c.Stats(ctx)
	if err != nil {
		return -1
	}
	for _, rpc := range st.RPCs {
		if rpc.Name == "chaos_delayed" {
			return int(rpc.Received)
		}
	}
	return 0
}

// injectSlow stalls a worker's handlers for longer than any deadline: calls to it must end at their
// deadline with ErrDeadlineExceeded and the health checks (not stalled) must keep it. Recovery is
// the time from the end of the stall to full health.
func injectSlow(ctx context.Context, r *procRun) {
	i := r.pick()
	pid := r.sw.pid(i)
	r.sw.setFaults(i, faults.Faults{CallDelay: time.Minute})
	const deadline = 500 * time.Millisecond
	for range 3 {
		took, err := r.call(ctx, i, deadline)
		if !errors.Is(err, ipc.ErrDeadlineExceeded) {
			r.t.Errorf("a call to a stalled worker returned %v after %v, want ErrDeadlineExceeded", err, took)
		}
	}
	r.sw.clearFaults(i)
	r.recovered(ctx, time.Now())
	if after := r.sw.pid(i); after != pid {
		r.t.Errorf("the slow worker was restarted (pid %d -> %d): health checks must not depend on the handlers", pid, after)
	}
}

// injectSocketClosed holds a Store and a Get in a worker (call_delay), shuts the worker's end of
// the parent connection down (SIGUSR1) and checks: the Store (a unary call) fails at once with
// ErrWorkerGone; the Get (which travels on a stream ipc may retry once, unary, when the stream breaks)
// ends by its deadline, typed. Recovery is the time to full health and a successful call through
// the same slot.
func injectSocketClosed(ctx context.Context, r *procRun) {
	i := r.pick()
	c := r.sw.client(i)
	r.sw.setFaults(i, faults.Faults{CallDelay: 30 * time.Second})
	const storeDeadline, getDeadline = 20 * time.Second, 5 * time.Second
	type result struct {
		took time.Duration
		err  error
	}
	stored, got := make(chan result, 1), make(chan result, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, storeDeadline)
		defer cancel()
		start := time.Now()
		_, err := c.Store(cctx, dht.StoreItem{Key: dht.MustKey("held"), Value: 1, Expiration: exp()})
		took := time.Since(start)
		r.tally.note("held Store", err, took, storeDeadline)
		stored <- result{took: took, err: err}
	}()
	go func() {
		took, err := r.call(ctx, i, getDeadline)
		got <- result{took: took, err: err}
	}()
	if !waitUntil(ctx, 10*time.Second, func() bool { return delayedCalls(ctx, c) >= 2 }) {
		r.t.Fatalf("the calls never reached the worker's fault point")
	}
	at := time.Now()
	if _, err := r.sw.signal(i, syscall.SIGUSR1); err != nil {
		r.t.Fatal(err)
	}
	res := <-stored
	failedIn := time.Since(at)
	if !errors.Is(res.err, ipc.ErrWorkerGone) {
		r.t.Errorf("the Store under a closed socket returned %v, want ErrWorkerGone", res.err)
	}
	if res.took > storeDeadline/2 {
		r.t.Errorf("the Store under a closed socket took %v: it should fail when the socket closes", res.took)
	}
	g := <-got // its outcome (typed or ok, in time) is checked by the tally
	r.sw.clearFaults(i)
	r.recovered(ctx, at)
	if _, err := r.call(ctx, i, 5*time.Second); err != nil {
		r.t.Errorf("slot %d does not serve after its socket was closed: %v", i, err)
	}
	r.notes = append(r.notes, fmt.Sprintf("store-failed-in=%v get-ended-after=%v(%s)", failedIn.Round(time.Millisecond),
		g.took.Round(time.Millisecond), outcomeName(g.err)))
}

// outcomeName is "ok" or the sentinel an error carries.
func outcomeName(err error) string {
	if err == nil {
		return "ok"
	}
	if n := sentinelName(err); n != "" {
		return n
	}
	return "untyped"
}

// waitUntil polls cond every 20 ms until it holds (true) or bound or ctx ends (false).
func waitUntil(ctx context.Context, bound time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		if cond() {
			return true
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
	}
}

// stateDamage breaks a stopped worker's state directory in one way; repair undoes it. cause is what
// the start failure must name; kept is a file that must not have been replaced by the worker.
type stateDamage struct {
	name   string
	cause  string
	kept   string // path relative to the state directory ("" for none)
	damage func(dir string) (repair func() error, err error)
}

var stateDamages = []stateDamage{
	{
		name: "state dir is a file", cause: "state directory",
		damage: func(dir string) (func() error, error) {
			if err := os.Rename(dir, dir+".saved"); err != nil {
				return nil, err
			}
			return func() error {
				if err := os.Remove(dir); err != nil {
					return err
				}
				return os.Rename(dir+".saved", dir)
			}, os.WriteFile(dir, []byte("not a directory\n"), 0o600)
		},
	},
	{
		name: "identity is garbage", cause: "identity", kept: "identity.key",
		damage: func(dir string) (func() error, error) {
			return replaceFile(filepath.Join(dir, "identity.key"), []byte("garbage, not a key"))
		},
	},
	{
		name: "identity is a directory", cause: "identity",
		damage: func(dir string) (func() error, error) {
			path := filepath.Join(dir, "identity.key")
			if err := os.Rename(path, path+".saved"); err != nil {
				return nil, err
			}
			return func() error {
				if err := os.Remove(path); err != nil {
					return err
				}
				return os.Rename(path+".saved", path)
			}, os.Mkdir(path, 0o700)
		},
	},
	{
		name: "records.db is garbage", cause: "records.db", kept: "records.db",
		damage: func(dir string) (func() error, error) {
			return replaceFile(filepath.Join(dir, "records.db"), []byte(strings.Repeat("garbage ", 1024)))
		},
	},
}

// replaceFile saves path's content, writes data in its place and returns the restore function.
func replaceFile(path string, data []byte) (func() error, error) {
	saved, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return func() error { return os.WriteFile(path, saved, 0o600) }, os.WriteFile(path, data, 0o600)
}

// injectStateDamage stops a worker (SIGSTOP, so it writes nothing more), damages its state
// directory (the next damage in stateDamages), kills it, checks two failed starts name the cause
// and leave the damaged file as it was, repairs and measures the time from the repair to full
// health; the slot must come back with its peer ID.
func injectStateDamage(ctx context.Context, r *procRun) {
	dmg := stateDamages[len(r.recoveries)%len(stateDamages)]
	i := r.pick()
	dir := r.sw.slotDir(i)
	peer := r.sw.pool.Status().Slots[i].PeerID
	pid, err := r.sw.signal(i, syscall.SIGSTOP)
	if err != nil {
		r.t.Fatal(err)
	}
	if !waitUntil(ctx, 10*time.Second, func() bool { return processState(pid) == 'T' }) {
		r.t.Fatalf("worker %d never showed as stopped (state %c)", pid, processState(pid))
	}
	repair, err := dmg.damage(dir)
	if err != nil {
		r.t.Fatalf("%s: %v", dmg.name, err)
	}
	var damaged []byte
	if dmg.kept != "" {
		damaged, _ = os.ReadFile(filepath.Join(dir, dmg.kept))
	}
	at := time.Now()
	if err := signalMarked(pid, r.sw.runID, syscall.SIGKILL); err != nil {
		r.t.Fatal(err)
	}
	for _, e := range startFailures(ctx, r, i, at, 2) {
		requireTypedStartFailure(r, e, dmg.cause)
	}
	if dmg.kept != "" {
		if now, _ := os.ReadFile(filepath.Join(dir, dmg.kept)); string(now) != string(damaged) {
			r.t.Errorf("%s: the worker replaced the damaged %s instead of refusing to start", dmg.name, dmg.kept)
		}
	}
	if err := repair(); err != nil {
		r.t.Fatalf("%s: repair: %v", dmg.name, err)
	}
	d := r.recovered(ctx, time.Now())
	if after := r.sw.pool.Status().Slots[i].PeerID; after != peer {
		r.t.Errorf("%s: slot %d came back as %s, was %s", dmg.name, i, after, peer)
	}
	r.notes = append(r.notes, fmt.Sprintf("%q-recovered-in=%v", dmg.name, d.Round(time.Millisecond)))
}
