package chaos

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/test/chaos/report"
	"github.com/hivemind-go/hivemind/test/netns"
)

// natReachWithin bounds how long a NATed worker takes to be reachable through the relay again
// after a start (AutoNAT's verdict: up to 15 s of boot delay, then a dial-back that times out;
// then a reservation).
const natReachWithin = 2 * time.Minute

// healWithin bounds how long after the last fault every acknowledged record is readable: a worker
// cut off stores records on itself alone and evicts every peer; it rejoins through its initial
// peer (the relay) with a backoff of 1, 2, 4, ... s (dht/refresh.go), then hands the records off.
// Generous for a loaded CI machine under -race; the time taken is printed in the row.
const healWithin = time.Minute

// natFault is one fault of the NAT row: a kind and whether it hits a worker behind a NAT.
type natFault struct {
	kind   string // "kill-9" or "partition"
	natted bool
}

// TestNATSwarm is the reliability row with half of the swarm behind NATs: 4 workers in network
// namespaces (test/netns), two on the public segment and two each behind its own masquerading
// router, reachable through a public relay (a supervisor dht: the bootstrap node) with
// --use-auto-relay, under get/store load through every worker, while workers are killed with
// SIGKILL (they restart with their identity and must find themselves private and reserve a slot
// on the relay again) and cut off the network for a while (a real partition: their namespace
// drops every packet). 0 hung, 0 unclear, 0 lost, as in every row; a record is lost when it is
// still unreadable healWithin after the last fault (records a cut-off worker stored on itself alone
// are found once it rejoins).
func TestNATSwarm(t *testing.T) {
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bed := netns.New(t)
	relayHost := bed.PublicHost()
	hosts := []*netns.Host{bed.PublicHost(), bed.PublicHost(), bed.LAN().Host(), bed.LAN().Host()}
	natted := []int{2, 3}
	relayAddr := startRelay(ctx, t, relayHost)

	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(err)
	}
	sw := startSwarm(ctx, t, swarmConfig{
		Workers: len(hosts),
		Node: ipc.NodeConfig{
			HostMaddrs:   []string{"/ip4/0.0.0.0/tcp/4001"},
			InitialPeers: []string{relayAddr},
			UseAutoRelay: true,
		},
		Launcher: func(env []string) (ipc.Launcher, error) {
			bySlot := map[string]ipc.Launcher{}
			for i, h := range hosts {
				l, err := ipc.NewExecLauncher(ipc.ExecConfig{Path: ipPath, Args: []string{"netns", "exec", h.NS, faultWorkerBin}, Env: env})
				if err != nil {
					return nil, err
				}
				bySlot[fmt.Sprintf("chaos-%d", i+1)] = l
			}
			return slotLaunchers(bySlot), nil
		},
	})
	rng := rand.New(rand.NewPCG(s, 10))
	first := waitNATReachable(ctx, t, sw, natted)
	t.Logf("every worker up, the NATed ones reachable through the relay after %v", first.Round(time.Millisecond))

	led := &ledger{}
	if err := seedRecords(ctx, sw, led, rng, 16, "seed-nat"); err != nil {
		t.Fatal(err)
	}
	ld := startLoad(ctx, sw, led, s, loadConfig{})
	plan := []natFault{{kind: "kill-9", natted: true}, {kind: "partition", natted: true}, {kind: "kill-9"}, {kind: "partition"}}
	if long() {
		for range 16 {
			plan = append(plan, natFault{kind: []string{"kill-9", "partition"}[rng.IntN(2)], natted: rng.IntN(2) == 0})
		}
	}
	var recoveries []time.Duration
	var done []string
	for _, f := range plan {
		slot := natted[rng.IntN(len(natted))]
		if !f.natted {
			slot = rng.IntN(2)
		}
		at := time.Now()
		switch f.kind {
		case "kill-9":
			pid, err := sw.signal(slot, syscall.SIGKILL)
			if err != nil {
				t.Fatal(err)
			}
			if e := sw.events.waitFor(ctx, func(e ipc.Event) bool { x, ok := e.(ipc.EventExited); return ok && x.PID == pid }); e == nil {
				t.Fatalf("no exit event for pid %d", pid)
			}
		case "partition":
			if err := hosts[slot].Cut(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-time.After(3 * time.Second): // the partition lasts while the load runs
			case <-ctx.Done():
			}
			if err := hosts[slot].Heal(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sw.waitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		waitNATReachable(ctx, t, sw, natted)
		took := time.Since(at)
		recoveries = append(recoveries, took)
		done = append(done, fmt.Sprintf("%s(slot %d)=%v", f.kind, slot, took.Round(100*time.Millisecond)))
	}
	stuck := ld.stop()
	if _, err := sw.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	waitNATReachable(ctx, t, sw, natted)
	vt := newTally()
	v, settled := verifyRecordsWithin(ctx, sw, led.all(), rng, 3, vt, healWithin)

	lt, pt := ld.tally.snapshot(), vt.snapshot()
	var punches uint64
	relayed := 0
	for _, st := range sw.pool.Status().Slots {
		punches += st.NAT.HolePunches
		relayed += st.NAT.RelayedConns
	}
	row := report.Row{
		Scenario:         "chaos/nat-relay",
		Runs:             len(plan),
		Calls:            lt.calls + pt.calls,
		FailedAsExpected: lt.typed + pt.typed,
		Hung:             lt.hung + pt.hung + int(stuck),
		Unclear:          lt.untyped + pt.untyped,
		Lost:             v.Lost,
		Restarts:         sw.restarts(),
		PeakMemory:       sw.mem.peakRSS(),
		MemoryKind:       "rss",
		Notes: fmt.Sprintf("seed=%d records=%d misses=%d workers=2 public + 2 behind NATs through a relay faults=%v every-record-readable-after=%v hole-punches=%d relayed-conns-at-end=%d %s",
			s, v.Checked, lt.misses, done, settled.Round(100*time.Millisecond), punches, relayed, ld.tally.sentinelSummary()),
	}
	for _, d := range recoveries {
		row.WorstRecovery = max(row.WorstRecovery, d)
	}
	recordRow(t, row)
	for _, ex := range append(lt.examples, pt.examples...) {
		t.Log(ex)
	}
	if !row.OK() {
		t.Errorf("hung=%d unclear=%d lost=%d (lost keys %q), all must be 0", row.Hung, row.Unclear, row.Lost, v.LostKeys)
	}
	if lt.ok == 0 {
		t.Errorf("the load never succeeded: %+v", lt)
	}
}

// slotLaunchers launches each slot's workers with the launcher named after the slot.
type slotLaunchers map[string]ipc.Launcher

func (l slotLaunchers) Launch(ctx context.Context, spec ipc.LaunchSpec) (ipc.Process, error) {
	launcher, ok := l[spec.Name]
	if !ok {
		return nil, fmt.Errorf("no launcher for slot %q", spec.Name)
	}
	return launcher.Launch(ctx, spec)
}

// startRelay runs the relay and bootstrap node (supervisor dht) in h and returns its multiaddr on
// h's public address; it stops with the test.
func startRelay(ctx context.Context, t *testing.T, h *netns.Host) string {
	t.Helper()
	cmd := h.Command(context.Background(), supervisorBin, "dht", "--host-maddrs", "/ip4/0.0.0.0/tcp/4001", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Cancel(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m, ok := strings.CutPrefix(sc.Text(), "MADDR "); ok && strings.HasPrefix(m, "/ip4/"+h.IP+"/") {
				select {
				case found <- m:
				default:
				}
			}
		}
	}()
	select {
	case m := <-found:
		return m
	case <-time.After(time.Minute):
		t.Fatal("the relay printed no address on the public segment within a minute")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return ""
}

// waitNATReachable waits until every NATed slot runs, finds itself private and holds a relay
// reservation (the pool's status, refreshed by each health check), and returns how long it took.
func waitNATReachable(ctx context.Context, t *testing.T, sw *swarm, natted []int) time.Duration {
	t.Helper()
	start := time.Now()
	ok := waitUntil(ctx, natReachWithin, func() bool {
		slots := sw.pool.Status().Slots
		return !slices.ContainsFunc(natted, func(i int) bool {
			st := slots[i]
			return st.State != ipc.SlotRunning || st.StatsPID != st.PID || st.NAT.Reachability != "private" || len(st.NAT.Reservations) == 0
		})
	})
	if !ok {
		var b strings.Builder
		for _, i := range natted {
			st := sw.pool.Status().Slots[i]
			fmt.Fprintf(&b, "[slot %d %s reachability=%q reservations=%v] ", i, st.State, st.NAT.Reachability, st.NAT.Reservations)
		}
		t.Fatalf("NATed workers not reachable through the relay within %v: %s", natReachWithin, b.String())
	}
	return time.Since(start)
}
