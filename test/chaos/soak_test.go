package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/test/chaos/report"
)

// figures are the resource counts compared at the start and the end of a soak.
type figures struct {
	goroutines, fds int    // this (parent) process
	heap            uint64 // this process, after a GC
	workerFDs       int    // the worker that is never killed
	workerRSS       uint64
	// workerKeys and workerCached are the keys the steady worker stores and caches: records are
	// data, not a leak, so its RSS is read against them.
	workerKeys, workerCached int
}

func measure(ctx context.Context, sw *swarm, steady int) figures {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f := figures{goroutines: runtime.NumGoroutine(), fds: fdCount(os.Getpid()), heap: ms.HeapInuse}
	if pid := sw.pid(steady); pid != 0 {
		f.workerFDs = fdCount(pid)
		if m, err := readMem(pid); err == nil {
			f.workerRSS = m.RSS
		}
	}
	if st, err := sw.client(steady).Stats(ctx); err == nil {
		f.workerKeys, f.workerCached = st.StoredKeys, st.CachedKeys
	}
	return f
}

func (f figures) String() string {
	return fmt.Sprintf("goroutines=%d fds=%d heap=%.1fMiB worker-fds=%d worker-rss=%.1fMiB worker-keys=%d worker-cached=%d",
		f.goroutines, f.fds, float64(f.heap)/(1<<20), f.workerFDs, float64(f.workerRSS)/(1<<20), f.workerKeys, f.workerCached)
}

// TestSoakNoGrowth runs load and kills random workers (never slot 0, whose worker is the steady
// one measured) for a while, and compares this process's goroutines, fds and heap and the steady
// worker's fds and RSS before and after, with the load stopped and the swarm healthy both times. A
// leak per restart or per call shows as growth; the bounds are generous, the figures printed.
func TestSoakNoGrowth(t *testing.T) {
	s := seed(t)
	duration := 15 * time.Second
	if long() {
		duration = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(s, 7))
	sw := startSwarm(ctx, t, swarmConfig{Workers: 4})
	led := &ledger{}
	if err := seedRecords(ctx, sw, led, rng, 16, "soak"); err != nil {
		t.Fatal(err)
	}
	// Warm up: one round of load, so lazily created pools and buffers exist.
	warm := startLoad(ctx, sw, led, s, loadConfig{})
	waitUntil(ctx, 10*time.Second, func() bool { return warm.tally.snapshot().calls > 50 })
	warm.stop()
	if _, err := sw.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	before := measure(ctx, sw, 0)

	ld := startLoad(ctx, sw, led, s+1, loadConfig{})
	kills := 0
	var worst time.Duration
	for end := time.Now().Add(duration); time.Now().Before(end); {
		i := 1 + rng.IntN(sw.pool.Len()-1)
		at := time.Now()
		if _, err := sw.signal(i, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		kills++
		if _, err := sw.waitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(at))
	}
	stuck := ld.stop()
	if _, err := sw.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	// Connections and goroutines of the killed workers wind down asynchronously: poll for the
	// goroutine count to settle before the final figures.
	waitUntil(ctx, 10*time.Second, func() bool { return runtime.NumGoroutine() <= before.goroutines+5 })
	after := measure(ctx, sw, 0)
	vt := newTally()
	v := verifyRecords(ctx, sw, led.all(), rng, 3, vt)

	lt, vs := ld.tally.snapshot(), vt.snapshot()
	row := report.Row{
		Scenario: "chaos/soak", Runs: kills, Calls: lt.calls + vs.calls, FailedAsExpected: lt.typed + vs.typed,
		Hung: lt.hung + vs.hung + int(stuck), Unclear: lt.untyped + vs.untyped, Lost: v.Lost,
		Restarts: sw.restarts(), WorstRecovery: worst, PeakMemory: sw.mem.peakRSS(), MemoryKind: "rss",
		Notes: fmt.Sprintf("seed=%d duration=%v before[%v] after[%v]", s, duration, before, after),
	}
	recordRow(t, row)
	if !row.OK() {
		t.Errorf("hung=%d unclear=%d lost=%d, all must be 0: %v", row.Hung, row.Unclear, row.Lost, lt.examples)
	}
	// Generous bounds: a leak of one goroutine or fd per restart or per thousand calls exceeds them.
	if after.goroutines > before.goroutines+kills/2+20 {
		t.Errorf("goroutines grew from %d to %d over %d restarts", before.goroutines, after.goroutines, kills)
	}
	if after.fds > before.fds+kills/2+10 {
		t.Errorf("fds grew from %d to %d over %d restarts", before.fds, after.fds, kills)
	}
	if after.workerFDs > before.workerFDs+kills/2+20 {
		t.Errorf("the steady worker's fds grew from %d to %d", before.workerFDs, after.workerFDs)
	}
	if after.workerRSS > 2*before.workerRSS+(64<<20) {
		t.Errorf("the steady worker's RSS grew from %d to %d MiB", before.workerRSS>>20, after.workerRSS>>20)
	}
}
