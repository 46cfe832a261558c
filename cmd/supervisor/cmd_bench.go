package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/worker"
)

const benchAbout = `Starts a swarm of worker processes (--workers, each bootstrapped from two earlier ones, and
from --initial-peers when given, to join a running swarm) and measures it through the public API,
every figure next to a baseline measured in the same run:

  latency     stores from random workers, get(latest) and default gets from non-writers, gets of
              missing keys and of a key the worker holds, one at a time: p50, p99, success rate, and
              the critical path: the sequential RPC rounds the node counted for the operation times
              the raw unary round trip (DHTProtocol.rpc_ping from this process's libp2p host to a
              worker) plus one parent→worker call (a gRPC health check), and the ratio to it;
  throughput  --inflight stores and gets in flight against one worker and spread over the swarm,
              next to raw unary calls/s at the same concurrency divided by the RPCs per operation;
  batch       a StoreMany and a GetMany of --batch keys next to as many separate calls in flight;
  start       a lone worker's start-to-ready next to the same node built in this process;
  rss         a lone worker's resident memory, idle and after 10,000 stored keys.

Each throughput and batch figure is the median of --repeat waves. The table goes to stdout; --json
FILE also writes the figures as JSON. Profiles: --cpuprofile and --blockprofile write this process's;
--worker-profiles DIR makes every worker write cpu-<pid>.pprof and block-<pid>.pprof there when it
stops (go tool pprof -top BINARY FILE).`

// benchWorkloads are the parts of a bench run, in the order they run.
var benchWorkloads = []string{"latency", "throughput", "batch", "start", "rss"}

// benchConfig is a bench command line.
type benchConfig struct {
	workers, ops, inflight, batch, repeat, starts int
	only                                          []string
	node                                          ipc.NodeConfig
	seed                                          uint64
}

func (c benchConfig) validate() error {
	var errs []error
	for _, f := range []struct {
		name     string
		val, min int
	}{
		{"--workers", c.workers, 2}, {"--ops", c.ops, 1}, {"--inflight", c.inflight, 1},
		{"--batch", c.batch, 1}, {"--repeat", c.repeat, 1}, {"--starts", c.starts, 1},
	} {
		if f.val < f.min {
			errs = append(errs, cli.Usagef("%s must be at least %d, got %d", f.name, f.min, f.val))
		}
	}
	if c.node.NoListen {
		errs = append(errs, cli.Usagef("--no-listen: the bench's workers bootstrap from each other and its host dials each of them; drop it"))
	}
	for _, w := range c.only {
		if !slices.Contains(benchWorkloads, w) {
			errs = append(errs, cli.Usagef("--only: unknown workload %q (want some of %s)", w, strings.Join(benchWorkloads, ", ")))
		}
	}
	return errors.Join(errs...)
}

func (c benchConfig) runs(workload string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, workload)
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fs := newFlagSet("bench", "bench [flags]", benchAbout, stderr)
	var nf nodeFlags
	nf.register(fs)
	var cfg benchConfig
	fs.IntVar(&cfg.workers, "workers", 16, "worker processes in the swarm")
	fs.IntVar(&cfg.ops, "ops", 200, "operations of each kind in the latency rows")
	fs.IntVar(&cfg.inflight, "inflight", 256, "operations in flight in the throughput rows")
	fs.IntVar(&cfg.batch, "batch", 1000, "keys of a StoreMany/GetMany in the batch rows")
	fs.IntVar(&cfg.repeat, "repeat", 3, "waves per throughput and batch row (the median is shown)")
	fs.IntVar(&cfg.starts, "starts", 15, "lone worker starts in the start row")
	var only cli.List
	fs.Var(&only, "only", "run only these workloads: "+strings.Join(benchWorkloads, ", "))
	seed := fs.Uint64("seed", 0, "seed of the random choices (0: random)")
	jsonOut := fs.String("json", "", "also write the figures as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile to this file")
	blockProfile := fs.String("blockprofile", "", "write this process's block profile to this file")
	workerProfiles := fs.String("worker-profiles", "", "directory where every worker writes its CPU and block profiles")
	var level cli.Level
	level.Level = slog.LevelWarn
	fs.Var(&level, "log-level", "log level of this process and the workers: debug, info, warn (the default) or error")
	pos, err := cli.ParseArgs(fs, args, nil)
	if err != nil {
		return err
	}
	if rest := splitPeers(pos, &nf.initialPeers); len(rest) > 0 {
		return cli.Usagef("bench takes no arguments, got %q", rest)
	}
	cfg.only = only
	if cfg.node, err = nf.nodeConfig(); err != nil {
		return err
	}
	if cfg.seed = *seed; cfg.seed == 0 {
		cfg.seed = mrand.Uint64()
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	env := []string{workerLogLevel(level)}
	if *workerProfiles != "" {
		dir, err := filepath.Abs(*workerProfiles)
		if err == nil {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return cli.Usagef("--worker-profiles: %v", err)
		}
		env = append(env, worker.EnvProfileDir+"="+dir)
	}
	stopProfiles, err := startBenchProfiles(*cpuProfile, *blockProfile)
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfiles(); perr != nil {
			err = errors.Join(err, fmt.Errorf("profiles: %w", perr))
		}
	}()

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level.Level}))
	launcher, err := ipc.NewExecLauncher(ipc.ExecConfig{Env: env})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bench: %d workers, seed %d, %d CPUs, worker GOMAXPROCS %d\n",
		cfg.workers, cfg.seed, runtime.NumCPU(), ipc.DefaultWorkerGOMAXPROCS)
	s, err := startBenchSwarm(ctx, cfg, launcher, logger)
	if err != nil {
		return err
	}
	defer s.stop()
	rep := benchReport{Workers: cfg.workers, Seed: cfg.seed, CPUs: runtime.NumCPU(), SwarmStartP50Ms: ms(s.started.quantile(0.5))}
	if cfg.runs("latency") {
		if rep.Latency, err = s.latency(ctx, cfg.ops); err != nil {
			return err
		}
	}
	if cfg.runs("throughput") {
		if rep.Throughput, err = s.throughput(ctx, cfg.inflight, cfg.repeat); err != nil {
			return err
		}
	}
	if cfg.runs("batch") {
		if rep.Batch, err = s.batches(ctx, cfg.batch, cfg.repeat); err != nil {
			return err
		}
	}
	if cfg.runs("start") {
		if rep.Start, err = benchStart(ctx, launcher, logger, cfg.starts); err != nil {
			return err
		}
	}
	if cfg.runs("rss") {
		if rep.RSS, err = benchRSS(ctx, launcher, logger); err != nil {
			return err
		}
	}
	rep.print(stdout)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
	}
	return nil
}

// startBenchProfiles starts this process's profiles, creating their files first (a path that
// cannot be written is a usage error before anything runs); stop writes them.
func startBenchProfiles(cpuPath, blockPath string) (stop func() error, err error) {
	var cpu, block *os.File
	if blockPath != "" {
		if block, err = os.Create(blockPath); err != nil {
			return nil, cli.Usagef("--blockprofile: %v", err)
		}
	}
	if cpuPath != "" {
		if cpu, err = os.Create(cpuPath); err != nil {
			return nil, errors.Join(cli.Usagef("--cpuprofile: %v", err), closeFile(block))
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			return nil, errors.Join(err, cpu.Close(), closeFile(block))
		}
	}
	if block != nil {
		runtime.SetBlockProfileRate(1000)
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if block != nil {
			errs = append(errs, pprof.Lookup("block").WriteTo(block, 0), block.Close())
		}
		return errors.Join(errs...)
	}, nil
}

// closeFile closes f when there is one.
func closeFile(f *os.File) error {
	if f == nil {
		return nil
	}
	return f.Close()
}

// benchSwarm is the swarm under measurement and this process's libp2p host, which makes the raw
// unary calls of the baselines.
type benchSwarm struct {
	workers []*ipc.Worker
	host    *p2p.Host
	peers   []p2p.PeerID // the workers' peer IDs
	started durations    // each worker's start-to-ready, bootstrap included
	rng     *mrand.Rand
	run     string // this run's key prefix
}

// startBenchSwarm starts cfg.workers workers one after another, each bootstrapped from two earlier
// ones (and cfg.node's initial peers), connects this process's host to all of them and warms the
// swarm up.
func startBenchSwarm(ctx context.Context, cfg benchConfig, l ipc.Launcher, logger *slog.Logger) (_ *benchSwarm, err error) {
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &benchSwarm{rng: mrand.New(mrand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)), run: hex.EncodeToString(id[:])}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	for i := range cfg.workers {
		node := cfg.node
		node.InitialPeers = slices.Clone(cfg.node.InitialPeers)
		for _, j := range s.earlier(i, 2) {
			node.InitialPeers = append(node.InitialPeers, s.workers[j].Maddrs()[0])
		}
		t0 := time.Now()
		w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{Name: fmt.Sprintf("bench-%d", i+1), Launcher: l, Logger: logger, Node: node})
		if err != nil {
			return nil, err
		}
		s.started = append(s.started, time.Since(t0))
		s.workers = append(s.workers, w)
		if len(w.Maddrs()) == 0 {
			return nil, fmt.Errorf("worker %s has no address to dial", w.ID())
		}
	}
	if s.host, err = p2p.New(ctx, p2p.Config{Logger: logger}); err != nil {
		return nil, err
	}
	for _, w := range s.workers {
		pid, err := s.host.Connect(ctx, w.Maddrs()[0])
		if err != nil {
			return nil, fmt.Errorf("connect to %s: %w", w.ID(), err)
		}
		s.peers = append(s.peers, pid)
	}
	return s, s.warmUp(ctx)
}

// earlier picks up to n distinct workers started before worker i.
func (s *benchSwarm) earlier(i, n int) []int {
	perm := s.rng.Perm(i)
	return perm[:min(n, i)]
}

// warmUp makes every worker store and get a few keys and pings each from the host, so the
// workers' connections to each other are open before anything is timed.
func (s *benchSwarm) warmUp(ctx context.Context) error {
	for i, w := range s.workers {
		key := s.key("warm", i)
		if _, err := w.Store(ctx, dht.StoreItem{Key: key, Value: i, Expiration: expiresIn(time.Hour)}); err != nil {
			return fmt.Errorf("warm-up store: %w", err)
		}
		for j := range s.workers {
			if _, err := s.workers[j].Get(ctx, key, dht.GetOptions{Latest: true}); err != nil {
				return fmt.Errorf("warm-up get: %w", err)
			}
		}
		for range 10 {
			if _, err := s.ping(ctx, i); err != nil {
				return fmt.Errorf("warm-up ping: %w", err)
			}
		}
	}
	return nil
}

// stop stops every worker and the host.
func (s *benchSwarm) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range s.workers {
		wg.Go(func() { w.Stop(ctx) })
	}
	wg.Wait()
	if s.host != nil {
		_ = s.host.Close()
	}
}

// key is a key of this run.
func (s *benchSwarm) key(kind string, i int) dht.Key {
	return dht.MustKey(fmt.Sprintf("bench/%s/%s/%d", s.run, kind, i))
}

// ping makes one raw unary call to worker i: a DHTProtocol.rpc_ping from a client-mode sender,
// which the node answers without touching its routing table.
func (s *benchSwarm) ping(ctx context.Context, i int) (time.Duration, error) {
	t0 := time.Now()
	_, err := p2p.CallUnary[*dhtpb.PingResponse](ctx, s.host, s.peers[i], dhtrpc.HandleName(dhtrpc.MethodPing),
		&dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{}})
	return time.Since(t0), err
}

// other picks a worker that is none of not.
func (s *benchSwarm) other(not ...int) int {
	for {
		if i := s.rng.IntN(len(s.workers)); !slices.Contains(not, i) {
			return i
		}
	}
}

func expiresIn(d time.Duration) float64 { return dht.SystemClock{}.Now() + d.Seconds() }

// durations are measured times.
type durations []time.Duration

// quantile returns the q-quantile (nearest rank); 0 when empty.
func (d durations) quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// median of positive figures (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchReport is what a bench run measured; its JSON form is what --json writes.
type benchReport struct {
	Workers         int             `json:"workers"`
	Seed            uint64          `json:"seed"`
	CPUs            int             `json:"cpus"`
	SwarmStartP50Ms float64         `json:"swarm_start_p50_ms"`
	Latency         *latencyReport  `json:"latency,omitempty"`
	Throughput      []throughputRow `json:"throughput,omitempty"`
	Batch           []batchRow      `json:"batch,omitempty"`
	Start           *startReport    `json:"start,omitempty"`
	RSS             *rssReport      `json:"rss,omitempty"`
}

func (r benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "swarm start-to-ready p50 (bootstrap from two workers included): %.1f ms\n", r.SwarmStartP50Ms)
	table := func(header string, rows func(tw io.Writer)) {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		rows(tw)
		_ = tw.Flush()
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "\nraw unary round trip p50 %.3f ms; parent→worker call p50 %.3f ms\n", l.UnaryP50Ms, l.CallP50Ms)
		table("operation\tops\tok\tp50 ms\tp99 ms\trounds p50\trounds mean\tRPCs/op\tbaseline ms\tratio\ttarget", func(tw io.Writer) {
			for _, row := range l.Rows {
				fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.2f\t%.2f\t%.0f\t%.2f\t%.1f\t%.2f\t%.2f×\t%s\n", row.Name, row.Ops, 100*row.OKRate,
					row.P50Ms, row.P99Ms, row.RoundsP50, row.RoundsMean, row.RPCsPerOp, row.BaselineMs, row.Ratio, target("≤ %g×", row.Target))
			}
		})
	}
	if len(r.Throughput) > 0 {
		table("throughput\tin flight\tok\tops/s\tRPCs/op\traw unary calls/s\tbaseline ops/s\tratio\ttarget\tCPU ms/op\tCPU µs/raw call\tCPU ratio", func(tw io.Writer) {
			for _, row := range r.Throughput {
				// An operation that sent no RPC (served from the worker's own storage in a small swarm)
				// has no RPC baseline: its baseline and ratios print as "-", not as 0.
				baseline := row.RPCsPerOp > 0
				fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.0f\t%.1f\t%.0f\t%s\t%s\t%s\t%.2f\t%.0f\t%s\n", row.Name, row.InFlight, 100*row.OKRate,
					row.OpsPerSec, row.RPCsPerOp, row.UnaryPerSec, figure(baseline, "%.0f", row.BaselinePerSec),
					figure(baseline, "%.2f", row.Ratio), target("≥ %g", row.Target),
					row.CPUPerOpMs, row.UnaryCPUUs, figure(baseline && row.CPUPerOpMs > 0, "%.2f", row.CPURatio))
			}
		})
		for _, row := range r.Throughput {
			baselineNote(w, row.Name, "raw unary calls", row.UnaryOKRate)
		}
	}
	if len(r.Batch) > 0 {
		table("batch\tkeys\tok\tkeys/s\trounds\tRPCs\tseparate calls keys/s\tRPCs\tratio\ttarget", func(tw io.Writer) {
			for _, row := range r.Batch {
				fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f×\t%s\n", row.Name, row.Keys, 100*row.OKRate,
					row.KeysPerSec, row.Rounds, row.RPCs, row.SeparatePerSec, row.SeparateRPCs, row.Ratio, target("≥ %g×", row.Target))
			}
		})
		for _, row := range r.Batch {
			baselineNote(w, row.Name, "separate calls", row.SeparateOKRate)
		}
	}
	if s := r.Start; s != nil {
		table("start-to-ready\tstarts\tworker p50 ms\tworker p99 ms\tin-process p50 ms\tratio\ttarget", func(tw io.Writer) {
			fmt.Fprintf(tw, "lone worker\t%d\t%.1f\t%.1f\t%.2f\t%.1f×\t≤ %g ms, ≤ %g×\n", s.Starts, s.WorkerP50Ms, s.WorkerP99Ms,
				s.InProcessP50Ms, s.Ratio, s.TargetMs, s.TargetRatio)
		})
	}
	if m := r.RSS; m != nil {
		table("resident memory\tidle MiB\tafter 10,000 keys MiB\tidle anonymous MiB\ttarget", func(tw io.Writer) {
			fmt.Fprintf(tw, "lone worker\t%.1f\t%.1f\t%.1f\t≤ %g, ≤ %g MiB\n", m.IdleMiB, m.LoadedMiB, m.IdleAnonMiB, m.TargetIdleMiB, m.TargetLoadedMiB)
		})
	}
}

// baselineNote says under a table when some calls of a row's baseline failed: they count in its
// rate, so the baseline and the ratio are not what their headers say.
func baselineNote(w io.Writer, row, calls string, okRate float64) {
	if okRate < 1 {
		fmt.Fprintf(w, "note: %s: only %.1f%% of the %s succeeded; its baseline and ratio count the failures\n", row, 100*okRate, calls)
	}
}

// figure renders v with format when it is defined, else "-".
func figure(defined bool, format string, v float64) string {
	if !defined {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// target renders a target, or "" when there is none.
func target(format string, t float64) string {
	if t == 0 {
		return ""
	}
	return fmt.Sprintf(format, t)
}
