package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
	"github.com/hivemind-go/hivemind/worker"
)

// The issue-11 targets the bench prints next to its ratios (never checked).
const (
	latencyTarget      = 3   // an operation's p50 ≤ 3× its critical path
	throughputTarget   = 0.5 // ops/s ≥ half of raw unary calls/s ÷ RPCs per op
	batchTarget        = 5   // a batch of keys ≥ 5× as many separate calls in flight
	startTargetMs      = 25  // a lone worker's start-to-ready p50
	startTargetRatio   = 4   // … and ≤ 4× the in-process node
	rssIdleTargetMiB   = 30  // idle worker
	rssLoadedTargetMiB = 45  // after 10,000 keys
	rssKeys            = 10000
)

// latencyReport holds the latency rows and the baselines measured alongside them.
type latencyReport struct {
	// UnaryP50Ms is the raw unary round trip: rpc_ping from this process's host to a worker.
	UnaryP50Ms float64 `json:"unary_p50_ms"`
	// CallP50Ms is one parent→worker call: a gRPC health check.
	CallP50Ms float64      `json:"call_p50_ms"`
	Rows      []latencyRow `json:"rows"`
}

// latencyRow is one kind of operation made one at a time.
type latencyRow struct {
	Name   string  `json:"name"`
	Ops    int     `json:"ops"`
	OKRate float64 `json:"ok_rate"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	// RoundsP50 and RoundsMean are the sequential RPC rounds the worker's node counted.
	RoundsP50  float64 `json:"rounds_p50"`
	RoundsMean float64 `json:"rounds_mean"`
	RPCsPerOp  float64 `json:"rpcs_per_op"`
	// BaselineMs is the p50 of the operations' critical paths: rounds × UnaryP50Ms + CallP50Ms.
	BaselineMs float64 `json:"baseline_ms"`
	// Ratio is P50Ms / BaselineMs.
	Ratio  float64 `json:"ratio"`
	Target float64 `json:"target,omitempty"`
}

// timedOp is one measured operation.
type timedOp struct {
	took   time.Duration
	ok     bool
	rounds uint64
	rpcs   uint64
}

// latency runs n operations of each kind, one at a time, each followed by a raw unary call and a
// parent→worker call to the same worker.
func (s *benchSwarm) latency(ctx context.Context, n int) (*latencyReport, error) {
	var unary, calls durations
	baselines := func(w int) error {
		d, err := s.ping(ctx, w)
		if err != nil {
			return fmt.Errorf("raw unary call: %w", err)
		}
		unary = append(unary, d)
		t0 := time.Now()
		if err := s.workers[w].Health(ctx); err != nil {
			return err
		}
		calls = append(calls, time.Since(t0))
		return nil
	}
	// measure runs op on worker w between two snapshots of its counters of kind (gets or stores).
	measure := func(w int, stores bool, op func(c *ipc.Worker) (bool, error)) (timedOp, error) {
		counts := func() (dht.OpCounts, error) {
			st, err := s.workers[w].Stats(ctx)
			if stores {
				return st.Stores, err
			}
			return st.Gets, err
		}
		before, err := counts()
		if err != nil {
			return timedOp{}, err
		}
		t0 := time.Now()
		ok, err := op(s.workers[w])
		took := time.Since(t0)
		if ctx.Err() != nil {
			return timedOp{}, ctx.Err()
		}
		after, cerr := counts()
		if cerr != nil {
			return timedOp{}, cerr
		}
		return timedOp{took: took, ok: ok && err == nil, rounds: after.Rounds - before.Rounds, rpcs: after.RPCs - before.RPCs},
			baselines(w)
	}
	type kind struct {
		name   string
		target float64
		ops    []timedOp
	}
	kinds := []*kind{{name: "store", target: latencyTarget}, {name: "get(latest)", target: latencyTarget},
		{name: "get"}, {name: "get(missing)", target: latencyTarget}, {name: "get(local key)"}}
	record := func(k *kind, op timedOp, err error) error {
		k.ops = append(k.ops, op)
		return err
	}
	writers := make([]int, n)
	for i := range n {
		writers[i] = s.rng.IntN(len(s.workers))
		op, err := measure(writers[i], true, func(c *ipc.Worker) (bool, error) {
			r, err := c.Store(ctx, dht.StoreItem{Key: s.key("latency", i), Value: i, Expiration: expiresIn(time.Hour)})
			return r.Stored, err
		})
		if err := record(kinds[0], op, err); err != nil {
			return nil, err
		}
	}
	get := func(w int, key dht.Key, latest, want bool) (timedOp, error) {
		return measure(w, false, func(c *ipc.Worker) (bool, error) {
			r, err := c.Get(ctx, key, dht.GetOptions{Latest: latest})
			return (r != nil) == want, err
		})
	}
	for i := range n {
		key := s.key("latency", i)
		latestAt := s.other(writers[i])
		steps := []struct {
			k      *kind
			w      int
			key    dht.Key
			latest bool
			want   bool
		}{
			{k: kinds[1], w: latestAt, key: key, latest: true, want: true},
			{k: kinds[2], w: s.other(writers[i], latestAt), key: key, want: true},
			{k: kinds[3], w: s.other(), key: s.key("missing", i), want: false},
			{k: kinds[4], w: writers[i], key: key, want: true},
		}
		for _, st := range steps {
			op, err := get(st.w, st.key, st.latest, st.want)
			if err := record(st.k, op, err); err != nil {
				return nil, err
			}
		}
	}
	unaryP50, callP50 := unary.quantile(0.5), calls.quantile(0.5)
	rep := &latencyReport{UnaryP50Ms: ms(unaryP50), CallP50Ms: ms(callP50)}
	for _, k := range kinds {
		var took, crit durations
		var rounds []float64
		ok, sumRounds, sumRPCs := 0, uint64(0), uint64(0)
		for _, op := range k.ops {
			took = append(took, op.took)
			crit = append(crit, time.Duration(op.rounds)*unaryP50+callP50)
			rounds = append(rounds, float64(op.rounds))
			sumRounds += op.rounds
			sumRPCs += op.rpcs
			if op.ok {
				ok++
			}
		}
		row := latencyRow{
			Name: k.name, Ops: len(k.ops), OKRate: float64(ok) / float64(len(k.ops)),
			P50Ms: ms(took.quantile(0.5)), P99Ms: ms(took.quantile(0.99)),
			RoundsP50: median(rounds), RoundsMean: float64(sumRounds) / float64(len(k.ops)),
			RPCsPerOp: float64(sumRPCs) / float64(len(k.ops)), BaselineMs: ms(crit.quantile(0.5)), Target: k.target,
		}
		row.Ratio = row.P50Ms / row.BaselineMs
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// throughputRow is a wave of operations in flight next to raw unary calls at the same concurrency.
type throughputRow struct {
	Name      string  `json:"name"`
	InFlight  int     `json:"in_flight"`
	OKRate    float64 `json:"ok_rate"`
	OpsPerSec float64 `json:"ops_per_sec"`
	// RPCsPerOp is what the operations' nodes counted (lookups' FINDs, STOREs to replicas).
	RPCsPerOp   float64 `json:"rpcs_per_op"`
	UnaryPerSec float64 `json:"unary_per_sec"`
	// UnaryOKRate is the share of the raw unary calls that succeeded (a failed call counts in
	// UnaryPerSec: below 1, the baseline is not one).
	UnaryOKRate float64 `json:"unary_ok_rate"`
	// BaselinePerSec is UnaryPerSec / RPCsPerOp; Ratio is OpsPerSec / BaselinePerSec; both 0 (no
	// baseline) when the operations sent no RPC.
	BaselinePerSec float64 `json:"baseline_per_sec"`
	Ratio          float64 `json:"ratio"`
	Target         float64 `json:"target,omitempty"`
	// CPUPerOpMs is the CPU time (user and system) of every worker and this process per operation,
	// UnaryCPUUs that of a raw unary call; CPURatio is UnaryCPUUs × RPCsPerOp / CPUPerOpMs, the
	// part of an operation's CPU that its RPCs would cost as raw calls. Unlike the rates, CPU time
	// is not what the other tenants of a shared machine take.
	CPUPerOpMs float64 `json:"cpu_per_op_ms"`
	UnaryCPUUs float64 `json:"unary_cpu_us"`
	CPURatio   float64 `json:"cpu_ratio"`
}

// wave runs n calls of f at once and returns the calls completed per second and how many f
// reported ok.
func wave(n int, f func(i int) bool) (perSec float64, ok int) {
	var good atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Go(func() {
			if f(i) {
				good.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds(), int(good.Load())
}

// opCounts sums the counters of the workers of kind stores or gets.
func (s *benchSwarm) opCounts(ctx context.Context, workers []int, stores bool) (dht.OpCounts, error) {
	var sum dht.OpCounts
	for _, w := range workers {
		st, err := s.workers[w].Stats(ctx)
		if err != nil {
			return sum, err
		}
		c := st.Gets
		if stores {
			c = st.Stores
		}
		sum.Ops, sum.Rounds, sum.RPCs = sum.Ops+c.Ops, sum.Rounds+c.Rounds, sum.RPCs+c.RPCs
	}
	return sum, nil
}

// throughput runs the throughput rows: stores, then gets of what they stored, against worker 0 and
// spread over the swarm, each wave next to a wave of raw unary calls to the same workers.
func (s *benchSwarm) throughput(ctx context.Context, n, repeat int) ([]throughputRow, error) {
	all := make([]int, len(s.workers))
	for i := range all {
		all[i] = i
	}
	type spec struct {
		name    string
		workers []int // worker of call i: workers[(i+shift) % len]
		shift   int   // a get is made by another worker than the one that stored its key
		stores  bool
	}
	specs := []spec{
		{name: "store → one worker", workers: all[:1], stores: true},
		{name: "store → swarm", workers: all, stores: true},
		{name: "get → one worker", workers: all[1:2]},
		{name: "get → swarm", workers: all, shift: 1},
	}
	var rows []throughputRow
	for si, sp := range specs {
		var opsRates, unaryRates, rpcsPerOp, opCPU, unaryCPU []float64
		ok, unaryOK, total := 0, 0, 0
		for r := range repeat {
			keyOf := func(i int) dht.Key { return s.key(fmt.Sprintf("throughput-%d-%d", si%2, r), i) }
			before, err := s.opCounts(ctx, sp.workers, sp.stores)
			if err != nil {
				return nil, err
			}
			cpu0 := s.cpu()
			rate, good := wave(n, func(i int) bool {
				w := s.workers[sp.workers[(i+sp.shift)%len(sp.workers)]]
				if sp.stores {
					res, err := w.Store(ctx, dht.StoreItem{Key: keyOf(i), Value: i, Expiration: expiresIn(time.Hour)})
					return err == nil && res.Stored
				}
				res, err := w.Get(ctx, keyOf(i), dht.GetOptions{})
				return err == nil && res != nil
			})
			cpu1 := s.cpu()
			after, err := s.opCounts(ctx, sp.workers, sp.stores)
			if err != nil {
				return nil, err
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			cpu2 := s.cpu()
			unaryRate, unaryGood := wave(n, func(i int) bool {
				_, err := s.ping(ctx, sp.workers[(i+sp.shift)%len(sp.workers)])
				return err == nil
			})
			cpu3 := s.cpu()
			opsRates, unaryRates = append(opsRates, rate), append(unaryRates, unaryRate)
			opCPU = append(opCPU, ms(cpu1-cpu0)/float64(n))
			unaryCPU = append(unaryCPU, float64((cpu3-cpu2).Microseconds())/float64(n))
			if ops := after.Ops - before.Ops; ops > 0 {
				rpcsPerOp = append(rpcsPerOp, float64(after.RPCs-before.RPCs)/float64(ops))
			}
			ok, unaryOK, total = ok+good, unaryOK+unaryGood, total+n
		}
		row := throughputRow{Name: sp.name, InFlight: n, OKRate: float64(ok) / float64(total), OpsPerSec: median(opsRates),
			RPCsPerOp: median(rpcsPerOp), UnaryPerSec: median(unaryRates), UnaryOKRate: float64(unaryOK) / float64(total),
			Target: throughputTarget}
		if row.RPCsPerOp > 0 {
			row.BaselinePerSec = row.UnaryPerSec / row.RPCsPerOp
			row.Ratio = row.OpsPerSec / row.BaselinePerSec
		}
		row.CPUPerOpMs, row.UnaryCPUUs = median(opCPU), median(unaryCPU)
		if row.CPUPerOpMs > 0 {
			row.CPURatio = row.UnaryCPUUs / 1000 * row.RPCsPerOp / row.CPUPerOpMs
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// batchRow is one batch call of many keys next to as many separate calls in flight.
type batchRow struct {
	Name       string  `json:"name"`
	Keys       int     `json:"keys"`
	OKRate     float64 `json:"ok_rate"`
	KeysPerSec float64 `json:"keys_per_sec"`
	// Rounds and RPCs are the batch call's, as its node counted them; SeparateRPCs those of the
	// separate calls together.
	Rounds         float64 `json:"rounds"`
	RPCs           float64 `json:"rpcs"`
	SeparatePerSec float64 `json:"separate_per_sec"`
	SeparateRPCs   float64 `json:"separate_rpcs"`
	// SeparateOKRate is the share of the separate calls that succeeded (a failed call counts in
	// SeparatePerSec: below 1, the baseline is not one).
	SeparateOKRate float64 `json:"separate_ok_rate"`
	Ratio          float64 `json:"ratio"`
	Target         float64 `json:"target,omitempty"`
}

// batches runs a StoreMany of n keys on worker 0 next to n Stores in flight on it, then a GetMany
// of those keys on worker 1 next to n Gets in flight on it.
func (s *benchSwarm) batches(ctx context.Context, n, repeat int) ([]batchRow, error) {
	type figures struct{ rates, rounds, rpcs []float64 }
	var storeMany, stores, getMany, gets figures
	ok, separateOK, total := [2]int{}, [2]int{}, 0
	// measure runs f on worker w and notes its keys/s and the RPC rounds and RPCs w's node counted.
	measure := func(into *figures, w int, isStore bool, f func() error) error {
		before, err := s.opCounts(ctx, []int{w}, isStore)
		if err != nil {
			return err
		}
		t0 := time.Now()
		if err := f(); err != nil {
			return err
		}
		into.rates = append(into.rates, float64(n)/time.Since(t0).Seconds())
		after, err := s.opCounts(ctx, []int{w}, isStore)
		if err != nil {
			return err
		}
		into.rounds = append(into.rounds, float64(after.Rounds-before.Rounds))
		into.rpcs = append(into.rpcs, float64(after.RPCs-before.RPCs))
		return nil
	}
	const storer, getter = 0, 1
	for r := range repeat {
		batchKey := func(i int) dht.Key { return s.key(fmt.Sprintf("batch-%d", r), i) }
		sepKey := func(i int) dht.Key { return s.key(fmt.Sprintf("separate-%d", r), i) }
		items, keys := make([]dht.StoreItem, n), make([]dht.Key, n)
		for i := range n {
			items[i] = dht.StoreItem{Key: batchKey(i), Value: i, Expiration: expiresIn(time.Hour)}
			keys[i] = batchKey(i)
		}
		err := measure(&storeMany, storer, true, func() error {
			res, err := s.workers[storer].StoreMany(ctx, items)
			for _, r := range res {
				if r.Stored {
					ok[0]++
				}
			}
			return err
		})
		if err == nil {
			err = measure(&stores, storer, true, func() error {
				_, good := wave(n, func(i int) bool {
					res, err := s.workers[storer].Store(ctx, dht.StoreItem{Key: sepKey(i), Value: i, Expiration: expiresIn(time.Hour)})
					return err == nil && res.Stored
				})
				separateOK[0] += good
				return ctx.Err()
			})
		}
		if err == nil {
			err = measure(&getMany, getter, false, func() error {
				got, err := s.workers[getter].GetMany(ctx, keys, dht.GetOptions{})
				for _, g := range got {
					if g != nil {
						ok[1]++
					}
				}
				return err
			})
		}
		if err == nil {
			err = measure(&gets, getter, false, func() error {
				_, good := wave(n, func(i int) bool {
					res, err := s.workers[getter].Get(ctx, sepKey(i), dht.GetOptions{})
					return err == nil && res != nil
				})
				separateOK[1] += good
				return ctx.Err()
			})
		}
		if err != nil {
			return nil, err
		}
		total += n
	}
	rows := []batchRow{
		{Name: "StoreMany", Keys: n, OKRate: float64(ok[0]) / float64(total), KeysPerSec: median(storeMany.rates),
			Rounds: median(storeMany.rounds), RPCs: median(storeMany.rpcs), SeparatePerSec: median(stores.rates), SeparateRPCs: median(stores.rpcs)},
		{Name: "GetMany", Keys: n, OKRate: float64(ok[1]) / float64(total), KeysPerSec: median(getMany.rates),
			Rounds: median(getMany.rounds), RPCs: median(getMany.rpcs), SeparatePerSec: median(gets.rates), SeparateRPCs: median(gets.rpcs)},
	}
	for i := range rows {
		rows[i].Ratio, rows[i].Target = rows[i].KeysPerSec/rows[i].SeparatePerSec, batchTarget
		rows[i].SeparateOKRate = float64(separateOK[i]) / float64(total)
	}
	return rows, nil
}

// startReport compares a lone worker's start-to-ready with the same node built in process.
type startReport struct {
	Starts         int     `json:"starts"`
	WorkerP50Ms    float64 `json:"worker_p50_ms"`
	WorkerP99Ms    float64 `json:"worker_p99_ms"`
	InProcessP50Ms float64 `json:"in_process_p50_ms"`
	Ratio          float64 `json:"ratio"`
	TargetMs       float64 `json:"target_ms"`
	TargetRatio    float64 `json:"target_ratio"`
}

// benchStart starts n lone workers one after another (each stopped before the next) and builds n
// nodes in this process, interleaved.
func benchStart(ctx context.Context, l ipc.Launcher, logger *slog.Logger, n int) (*startReport, error) {
	var proc, inproc durations
	for range n {
		t0 := time.Now()
		w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{Name: "bench-start", Launcher: l, Logger: logger})
		if err != nil {
			return nil, err
		}
		proc = append(proc, time.Since(t0))
		w.Stop(ctx)
		t0 = time.Now()
		node, err := worker.NewLibp2pNode(ctx, worker.NodeSpec{Config: &ipcpb.NodeConfig{}, Logger: logger})
		if err != nil {
			return nil, err
		}
		inproc = append(inproc, time.Since(t0))
		if err := node.Close(ctx); err != nil {
			return nil, err
		}
	}
	r := &startReport{Starts: n, WorkerP50Ms: ms(proc.quantile(0.5)), WorkerP99Ms: ms(proc.quantile(0.99)),
		InProcessP50Ms: ms(inproc.quantile(0.5)), TargetMs: startTargetMs, TargetRatio: startTargetRatio}
	r.Ratio = r.WorkerP50Ms / r.InProcessP50Ms
	return r, nil
}

// rssReport is a lone worker's resident memory.
type rssReport struct {
	IdleMiB         float64 `json:"idle_mib"`
	LoadedMiB       float64 `json:"loaded_mib"`
	IdleAnonMiB     float64 `json:"idle_anon_mib"`
	TargetIdleMiB   float64 `json:"target_idle_mib"`
	TargetLoadedMiB float64 `json:"target_loaded_mib"`
}

// benchRSS reads a lone worker's VmRSS (and RssAnon) right after it started, then after it stored
// 10,000 keys in batches of 500.
func benchRSS(ctx context.Context, l ipc.Launcher, logger *slog.Logger) (*rssReport, error) {
	w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{Name: "bench-rss", Launcher: l, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer w.Stop(context.Background())
	r := &rssReport{TargetIdleMiB: rssIdleTargetMiB, TargetLoadedMiB: rssLoadedTargetMiB}
	if r.IdleMiB, err = procStatusMiB(w.PID(), "VmRSS:"); err != nil {
		return nil, err
	}
	if r.IdleAnonMiB, err = procStatusMiB(w.PID(), "RssAnon:"); err != nil {
		return nil, err
	}
	const perCall = 500
	for b := range rssKeys / perCall {
		items := make([]dht.StoreItem, perCall)
		for i := range items {
			items[i] = dht.StoreItem{Key: dht.MustKey(fmt.Sprintf("rss-%d-%d", b, i)), Value: i, Expiration: expiresIn(time.Hour)}
		}
		if _, err := w.StoreMany(ctx, items); err != nil {
			return nil, err
		}
	}
	r.LoadedMiB, err = procStatusMiB(w.PID(), "VmRSS:")
	return r, err
}

// cpu is the CPU time (user and system) used so far by every worker of the swarm and this process.
func (s *benchSwarm) cpu() time.Duration {
	var total time.Duration
	for _, w := range s.workers {
		d, _ := procCPU(w.PID())
		total += d
	}
	if d, err := procCPU(os.Getpid()); err == nil {
		total += d
	}
	return total
}

// procCPU returns the time a process's threads have spent on a CPU, from their
// /proc/<pid>/task/<tid>/schedstat (nanoseconds; /proc/<pid>/stat counts in 10 ms ticks, too coarse
// for a wave of raw calls spread over 17 processes). A thread that has exited is not counted (a Go
// process keeps its threads).
func procCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread just exited
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, err
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// procStatusMiB reads a kB field of /proc/<pid>/status.
func procStatusMiB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			fields := strings.Fields(v)
			if len(fields) == 0 {
				break
			}
			kb, err := strconv.Atoi(fields[0])
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no " + field + " in /proc/" + strconv.Itoa(pid) + "/status")
}
