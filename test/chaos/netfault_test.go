package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/test/chaos/faults"
	"github.com/hivemind-go/hivemind/test/chaos/report"
)

// netRefresh is the routing-table refresh period of the net-fault swarms: the heal bound is stated
// in it.
const netRefresh = 3 * time.Second

// TestPartitionHeals splits a swarm of net-fault workers in two (each side refuses every DHT RPC
// to and from the other), stores records on each side, heals, and measures how long until every
// record is readable from the other side. Claim: within the refresh period (asserted with a
// generous factor; the time is printed).
func TestPartitionHeals(t *testing.T) {
	s := seed(t)
	runs := 1
	if long() {
		runs = 5
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(s, 4))
	sw := startSwarm(ctx, t, swarmConfig{
		Workers:   8,
		NetFaults: true,
		DHT:       ipc.DHTParams{RefreshInterval: netRefresh, WaitTimeout: time.Second},
	})
	tl := newTally()
	var worst time.Duration
	var heals []string
	unhealed, unreadable := 0, 0
	for run := range runs {
		order := rng.Perm(sw.pool.Len())
		a, b := order[:4], order[4:]
		peers := sw.peerIDs()
		block := func(side, other []int) {
			var ids []string
			for _, j := range other {
				ids = append(ids, peers[j])
			}
			for _, i := range side {
				sw.setFaults(i, faults.Faults{Blocked: ids})
			}
		}
		block(a, b)
		block(b, a)
		// Records stored on each side while it is cut off live on that side only.
		recsA := storeOn(ctx, t, sw, a, fmt.Sprintf("side-a-%d", run), 6, tl)
		recsB := storeOn(ctx, t, sw, b, fmt.Sprintf("side-b-%d", run), 6, tl)
		crossMisses := 0
		for _, rec := range recsA[:2] {
			if !getOn(ctx, sw, b[0], rec, tl) {
				crossMisses++
			}
		}
		t.Logf("run %d: partition %v | %v; %d of 2 cross-side gets found nothing (expected while cut)", run, a, b, crossMisses)

		for i := range sw.pool.Len() {
			sw.clearFaults(i)
		}
		healed := time.Now()
		pending := append(crossChecks(recsA, b), crossChecks(recsB, a)...)
		bound := 5 * netRefresh // generous (a loaded CI machine, -race): the claim is one refresh period
		ok := waitUntil(ctx, bound, func() bool {
			pending = slices.DeleteFunc(pending, func(c crossCheck) bool { return getOn(ctx, sw, c.slot, c.rec, tl) })
			return len(pending) == 0
		})
		took := time.Since(healed)
		worst = max(worst, took)
		heals = append(heals, took.Round(time.Millisecond).String())
		if !ok {
			unhealed++
			unreadable += len(pending)
			var sizes []int
			for _, st := range sw.pool.Status().Slots {
				sizes = append(sizes, st.RoutingTableSize)
			}
			t.Errorf("run %d: %d cross-side gets still fail %v after the heal (refresh period %v); routing-table sizes %v",
				run, len(pending), took, netRefresh, sizes)
		}
	}
	c := tl.snapshot()
	row := report.Row{
		Scenario: "net/partition-heal", Runs: runs, Calls: c.calls, FailedAsExpected: c.typed + c.misses,
		Hung: c.hung, Unclear: c.untyped, Lost: unreadable, Restarts: sw.restarts(), WorstRecovery: worst,
		PeakMemory: sw.mem.peakRSS(), MemoryKind: "rss",
		Notes: fmt.Sprintf("seed=%d refresh=%v heal-times=%v unhealed-runs=%d", s, netRefresh, heals, unhealed),
	}
	recordRow(t, row)
	if row.Hung != 0 || row.Unclear != 0 {
		t.Errorf("hung=%d unclear=%d, both must be 0: %v", row.Hung, row.Unclear, c.examples)
	}
}

// crossCheck is a record to read through a slot of the other side.
type crossCheck struct {
	slot int
	rec  record
}

func crossChecks(recs []record, side []int) []crossCheck {
	var out []crossCheck
	for i, rec := range recs {
		out = append(out, crossCheck{slot: side[i%len(side)], rec: rec})
	}
	return out
}

// storeOn stores n records through the given slots (round robin), each retried until acknowledged.
func storeOn(ctx context.Context, t *testing.T, sw *swarm, slots []int, prefix string, n int, tl *tally) []record {
	t.Helper()
	var out []record
	for i := range n {
		rec := record{key: dht.MustKey(fmt.Sprintf("%s-%d", prefix, i)), value: mustPack(fmt.Sprintf("%s value %d", prefix, i))}
		ok := waitUntil(ctx, 30*time.Second, func() bool {
			const deadline = 5 * time.Second
			cctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			res, err := sw.client(slots[i%len(slots)]).Store(cctx, dht.StoreItem{Key: rec.key, Value: msgpack.Raw(rec.value), Expiration: exp()})
			tl.note("Store", err, time.Since(start), deadline)
			return err == nil && res.Stored
		})
		if !ok {
			t.Fatalf("could not store %s through slots %v", prefix, slots)
		}
		out = append(out, rec)
	}
	return out
}

// getOn reads rec through slot and reports whether it came back with its value.
func getOn(ctx context.Context, sw *swarm, slot int, rec record, tl *tally) bool {
	const deadline = 5 * time.Second
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	got, err := sw.client(slot).Get(cctx, rec.key, dht.GetOptions{})
	tl.note("Get", err, time.Since(start), deadline)
	if err == nil && got == nil {
		tl.miss()
	}
	return err == nil && got != nil && string(got.Value) == string(rec.value)
}

// TestLinkFaults slows the DHT RPCs between net-fault workers down: first every link by 200 ms
// (each RPC waits before it is sent), then two workers' handlers by 3 s (past the 1 s RPC timeout:
// their peers give up on them). Gets and stores through the other workers must keep succeeding
// within their deadline; nothing may hang.
func TestLinkFaults(t *testing.T) {
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(s, 6))
	sw := startSwarm(ctx, t, swarmConfig{
		Workers:   8,
		NetFaults: true,
		DHT:       ipc.DHTParams{RefreshInterval: netRefresh, WaitTimeout: time.Second},
	})
	tl := newTally()
	all := rng.Perm(sw.pool.Len())
	base := storeOn(ctx, t, sw, all, "links", 8, tl)
	phases := []struct {
		name   string
		faults func(i int) faults.Faults
		users  []int // slots the checks go through
	}{
		{name: "link-delay-200ms", faults: func(int) faults.Faults { return faults.Faults{LinkDelay: 200 * time.Millisecond} }, users: all},
		{name: "two-stalled-peers", faults: func(i int) faults.Faults {
			if i == all[0] || i == all[1] {
				return faults.Faults{HandlerDelay: 3 * time.Second}
			}
			return faults.Faults{}
		}, users: all[2:]},
	}
	var notes []string
	failed := 0
	for _, ph := range phases {
		for i := range sw.pool.Len() {
			sw.setFaults(i, ph.faults(i))
		}
		start := time.Now()
		recs := storeOn(ctx, t, sw, ph.users, ph.name, 4, tl)
		ok := 0
		for j, rec := range append(recs, base...) {
			if getOn(ctx, sw, ph.users[j%len(ph.users)], rec, tl) {
				ok++
			} else {
				failed++
			}
		}
		notes = append(notes, fmt.Sprintf("%s:%d/%d-in-%v", ph.name, ok, len(recs)+len(base), time.Since(start).Round(time.Millisecond)))
		for i := range sw.pool.Len() {
			sw.clearFaults(i)
		}
	}
	c := tl.snapshot()
	row := report.Row{
		Scenario: "net/link-faults", Runs: len(phases), Calls: c.calls, FailedAsExpected: c.typed,
		Hung: c.hung, Unclear: c.untyped, Lost: failed, Restarts: sw.restarts(),
		PeakMemory: sw.mem.peakRSS(), MemoryKind: "rss",
		Notes: fmt.Sprintf("seed=%d %v", s, notes),
	}
	recordRow(t, row)
	if !row.OK() {
		t.Errorf("hung=%d unclear=%d unreadable=%d, all must be 0: %v", row.Hung, row.Unclear, row.Lost, c.examples)
	}
}
