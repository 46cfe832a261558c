package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/test/chaos/faults"
	"github.com/hivemind-go/hivemind/test/chaos/report"
)

// TestDurabilityUnderKills stores records with 5 replicas in a 16-worker swarm, then kills workers
// one at a time with SIGKILL. Each killed worker is kept down (it crashes at start until released)
// while every record is read back through the others; then it is released, restarts with its
// durable state, and the records are read again (every few kills, and at the end). Target: 0 lost
// across 100 kills (the long form); the short form does fewer.
func TestDurabilityUnderKills(t *testing.T) {
	s := seed(t)
	kills, records, verifyEvery := 16, 48, 4
	if long() {
		kills, records, verifyEvery = 100, 128, 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(s, 2))
	sw := startSwarm(ctx, t, swarmConfig{
		Workers: 16,
		DHT:     ipc.DHTParams{NumReplicas: 5, WaitTimeout: time.Second},
		Backoff: ipc.BackoffConfig{Initial: 50 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2, ResetAfter: time.Second},
	})
	led := &ledger{}
	if err := seedRecords(ctx, sw, led, rng, records, "durable"); err != nil {
		t.Fatal(err)
	}
	ld := startLoad(ctx, sw, led, s, loadConfig{Callers: 2, StoreFraction: 0.2, Pause: 50 * time.Millisecond})

	vt := newTally()
	var (
		lost, checks int
		worst        time.Duration
		lostKeys     []string
	)
	verify := func(what string, skip ...int) {
		v := verifyRecords(ctx, sw, led.all(), rng, 2, vt, skip...)
		checks += v.Checked
		if v.Lost > 0 {
			lost += v.Lost
			lostKeys = append(lostKeys, v.LostKeys...)
			t.Errorf("%s: %d of %d records unreadable (e.g. %q): %s", what, v.Lost, v.Checked, v.LostKeys, sw.describe())
		}
	}
	for k := range kills {
		running := sw.running()
		i := running[rng.IntN(len(running))]
		sw.setFaults(i, faults.Faults{ExitAtStart: crashCode}) // keep it down until released
		at := time.Now()
		if _, err := sw.signal(i, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		verify(fmt.Sprintf("kill %d, slot %d down", k+1, i), i)
		sw.clearFaults(i)
		if _, err := sw.waitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(at))
		if (k+1)%verifyEvery == 0 {
			verify(fmt.Sprintf("after kill %d, slot %d restarted", k+1, i))
		}
	}
	stuck := ld.stop()
	if _, err := sw.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	verify("at the end")

	lt, vs := ld.tally.snapshot(), vt.snapshot()
	row := report.Row{
		Scenario:         "chaos/durability-16x5",
		Runs:             kills,
		Calls:            lt.calls + vs.calls,
		FailedAsExpected: lt.typed + vs.typed,
		Hung:             lt.hung + vs.hung + int(stuck),
		Unclear:          lt.untyped + vs.untyped,
		Lost:             lost,
		Restarts:         sw.restarts(),
		WorstRecovery:    worst,
		PeakMemory:       sw.mem.peakRSS(),
		MemoryKind:       "rss",
		Notes:            fmt.Sprintf("seed=%d records=%d record-checks=%d %s", s, len(led.all()), checks, ld.tally.sentinelSummary()),
	}
	recordRow(t, row)
	for _, ex := range append(lt.examples, vs.examples...) {
		t.Log(ex)
	}
	if !row.OK() {
		t.Errorf("hung=%d unclear=%d lost=%d (%q), all must be 0", row.Hung, row.Unclear, row.Lost, lostKeys)
	}
}
