package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	oklog "github.com/oklog/run"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/worker"
)

const runAbout = `Runs a supervised swarm of DHT workers. Worker 1 starts first; the others bootstrap from it (and
every restarted worker from the workers running at that moment; when none runs, the first to restart
starts alone and the others wait until it is ready). Each worker keeps its identity,
node ID and stored records in <state-dir>/worker-N, so a restarted worker has the same peer ID.
Prints every worker's multiaddrs and how to query them, serves a status page at / (open it in a
browser), JSON status at /status and Prometheus metrics at /metrics on the admin address, and stops
every worker on Ctrl-C.
Explicit ports in --host-maddrs/--announce-maddrs are given to worker 1; worker N gets port+N-1.`

// Files in a supervisor's state directory.
const (
	adminAddrFile = "admin.addr"
	lockFile      = "supervisor.lock"
)

// defaultAdminAddr is the admin endpoint unless --admin-addr says otherwise.
const defaultAdminAddr = "127.0.0.1:7677"

type runFlags struct {
	node           nodeFlags
	workers        int
	stateDir       string
	adminAddr      string
	restart        string
	maxRestarts    int
	restartPeriod  time.Duration
	healthInterval time.Duration
	logLevel       cli.Level
	workerBinary   string
	noMTLS         bool
}

func runSwarm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "run [flags]", runAbout, stderr)
	var f runFlags
	f.node.register(fs)
	fs.IntVar(&f.workers, "workers", 3, "number of workers")
	fs.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "state directory: one subdirectory per worker, the admin address file, a lock")
	fs.StringVar(&f.adminAddr, "admin-addr", defaultAdminAddr, "admin HTTP endpoint (host:port; port 0 picks one; empty disables)")
	fs.StringVar(&f.restart, "restart", "always", "restart policy: always, on-failure or never")
	fs.IntVar(&f.maxRestarts, "max-restarts", ipc.DefaultMaxRestarts, "restart intensity: at most this many restarts of a worker per --restart-period, then it gives up (negative: no limit)")
	fs.DurationVar(&f.restartPeriod, "restart-period", ipc.DefaultIntensityPeriod, "restart intensity period")
	fs.DurationVar(&f.healthInterval, "health-interval", ipc.DefaultHealthInterval, "health check period (negative: off)")
	fs.Var(&f.logLevel, "log-level", "log level: debug, info (the default), warn or error")
	fs.StringVar(&f.workerBinary, "worker-binary", "", "run workers from this binary (it must call worker.Main) instead of re-executing supervisor")
	fs.BoolVar(&f.noMTLS, "no-mtls", false, "turn the mutual TLS between the supervisor and its workers off (certificates of an authority the supervisor makes at start; the socket directory stays 0700)")
	pos, err := cli.ParseArgs(fs, args, nil)
	if err != nil {
		return err
	}
	if rest := splitPeers(pos, &f.node.initialPeers); len(rest) > 0 {
		return cli.Usagef("run takes no arguments, got %q", rest)
	}
	if f.workers < 1 {
		return cli.Usagef("--workers must be at least 1, got %d", f.workers)
	}
	policy, err := parsePolicy(f.restart)
	if err != nil {
		return err
	}
	node, err := f.node.nodeConfig()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel.Level}))

	stateDir, err := filepath.Abs(f.stateDir)
	if err != nil {
		return err
	}
	unlock, err := lockStateDir(stateDir)
	if err != nil {
		return err
	}
	defer unlock()

	launcher, err := ipc.NewExecLauncher(ipc.ExecConfig{
		Path:            f.workerBinary,
		DisableAutoMTLS: f.noMTLS,
		Env:             []string{workerLogLevel(f.logLevel)},
	})
	if err != nil {
		return cli.AsUsage(err)
	}
	out := newPrinter(stdout, f.workers)
	maxRestarts := f.maxRestarts
	if maxRestarts == 0 {
		maxRestarts = -1 // 0 would mean the default; the flag's 0 means "never restart"
		policy = ipc.RestartNever
	}
	pool, err := ipc.NewPool(ipc.PoolConfig{
		Workers:           f.workers,
		Name:              "worker",
		StateDir:          stateDir,
		Node:              node,
		SlotNode:          func(i int, n ipc.NodeConfig) ipc.NodeConfig { return shiftNodePorts(n, i) },
		BootstrapFromPool: true,
		Restart:           policy,
		Intensity:         ipc.IntensityConfig{MaxRestarts: maxRestarts, Period: f.restartPeriod},
		Health:            ipc.HealthConfig{Interval: f.healthInterval},
		EventHook:         out.event,
		Logger:            logger,
	}, launcher)
	if err != nil {
		return cli.AsUsage(err)
	}

	var g oklog.Group
	poolCtx, cancelPool := context.WithCancel(context.Background())
	g.Add(func() error {
		return pool.Serve(poolCtx)
	}, func(error) {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		report, _ := pool.Shutdown(sctx)
		cancelPool()
		out.stopped(report)
	})
	if f.adminAddr != "" {
		series := newSeriesRecorder(pool.Status)
		srv, ln, err := listenAdmin(f.adminAddr, pool, series, stateDir)
		if err != nil {
			_, _ = pool.Shutdown(context.Background())
			return err
		}
		seriesCtx, stopSeries := context.WithCancel(context.Background())
		g.Add(func() error { return series.Serve(seriesCtx) }, func(error) { stopSeries() })
		g.Add(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin endpoint: %w", err)
			}
			return nil
		}, func(error) {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			_ = os.Remove(filepath.Join(stateDir, adminAddrFile))
		})
		out.adminURL = "http://" + ln.Addr().String()
		fmt.Fprintf(stdout, "Status page: %s/\n", out.adminURL)
	}
	sigCtx, cancelSig := context.WithCancel(ctx)
	g.Add(func() error {
		<-sigCtx.Done()
		return nil
	}, func(error) { cancelSig() })
	// The summary is printed by out.event, right after the ready lines of the last worker; this
	// actor only ends the run when a worker gives up (or stops) before the swarm was ready.
	readyCtx, cancelReady := context.WithCancel(context.Background())
	g.Add(func() error {
		if err := pool.WaitReady(readyCtx); err != nil {
			if readyCtx.Err() != nil {
				return nil
			}
			return err
		}
		<-readyCtx.Done()
		return nil
	}, func(error) { cancelReady() })
	return g.Run()
}

func parsePolicy(s string) (ipc.RestartPolicy, error) {
	switch s {
	case "always":
		return ipc.RestartAlways, nil
	case "on-failure":
		return ipc.RestartOnFailure, nil
	case "never":
		return ipc.RestartNever, nil
	}
	return 0, cli.Usagef("--restart must be always, on-failure or never, got %q", s)
}

// workerLogLevel is the environment entry that gives a worker the supervisor's log level.
func workerLogLevel(l cli.Level) string {
	return worker.EnvLogLevel + "=" + strings.ToLower(l.String())
}

// lockStateDir creates the state directory (0700) and takes its lock, so two supervisors never
// share workers' state.
func lockStateDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("another supervisor is running with state directory %s (use --state-dir)", dir)
	}
	return func() { _ = f.Close() }, nil
}

var portRe = regexp.MustCompile(`/(tcp|udp)/(\d+)`)

// shiftNodePorts gives worker i explicit ports shifted by i (port 0 stays 0).
func shiftNodePorts(n ipc.NodeConfig, i int) ipc.NodeConfig {
	shift := func(list []string) []string {
		out := make([]string, len(list))
		for j, m := range list {
			out[j] = portRe.ReplaceAllStringFunc(m, func(s string) string {
				parts := strings.Split(s, "/")
				p, _ := strconv.Atoi(parts[2])
				if p == 0 {
					return s
				}
				return fmt.Sprintf("/%s/%d", parts[1], p+i)
			})
		}
		return out
	}
	n.HostMaddrs = shift(n.HostMaddrs)
	n.AnnounceMaddrs = shift(n.AnnounceMaddrs)
	return n
}

// printer writes the human-readable story of a swarm to stdout. Everything goes through its
// methods, under one lock and in the order the pool's events arrive, so that the summary ("N workers
// ready") comes right after the ready lines of the worker that completed the swarm, never before.
type printer struct {
	mu       sync.Mutex
	w        io.Writer
	adminURL string     // set before the pool serves
	up       []bool     // per slot: its worker is ready and has not exited since
	maddrs   [][]string // per slot: the multiaddrs of its last ready worker
	ready    bool       // the summary was printed
}

// newPrinter returns a printer for a swarm of n workers.
func newPrinter(w io.Writer, n int) *printer {
	return &printer{w: w, up: make([]bool, n), maddrs: make([][]string, n)}
}

// event prints a pool event; the EventReady that makes every worker ready is followed by the
// summary (once).
func (p *printer) event(e ipc.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := e.(type) {
	case ipc.EventReady:
		fmt.Fprintf(p.w, "%s ready: pid %d, peer %s\n", e.SlotName, e.PID, e.PeerID)
		for _, m := range e.Maddrs {
			fmt.Fprintf(p.w, "  %s\n", m)
		}
		p.up[e.SlotIndex], p.maddrs[e.SlotIndex] = true, e.Maddrs
		if !p.ready && !slices.Contains(p.up, false) {
			p.summary()
		}
	case ipc.EventUnhealthy:
		fmt.Fprintln(p.w, e.String())
	case ipc.EventExited, ipc.EventGaveUp:
		fmt.Fprintln(p.w, e.String())
		p.up[e.Index()] = false
	case ipc.EventBackoff:
		if p.ready {
			fmt.Fprintln(p.w, e.String())
		}
	case ipc.EventStartFailed, ipc.EventStopped:
		p.up[e.Index()] = false
	}
}

// summary tells how to use the swarm; p.mu is held.
func (p *printer) summary() {
	p.ready = true
	first, last := p.maddrs[0], p.maddrs[len(p.maddrs)-1]
	fmt.Fprintf(p.w, "\n%d workers ready. Query them from another terminal:\n", len(p.up))
	if len(first) > 0 && len(last) > 0 {
		fmt.Fprintf(p.w, "  supervisor store greeting '\"hello\"' --initial-peers %s\n", first[0])
		fmt.Fprintf(p.w, "  supervisor get greeting --initial-peers %s\n", last[0])
	}
	if p.adminURL != "" {
		fmt.Fprintf(p.w, "  supervisor status    (or %s/status, %s/metrics)\n", p.adminURL, p.adminURL)
	}
	fmt.Fprintln(p.w, "Ctrl-C stops every worker.")
}

func (p *printer) stopped(r ipc.StopReport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	killed := r.Killed()
	fmt.Fprintf(p.w, "stopped %d workers", len(r.Slots))
	if len(killed) > 0 {
		var names []string
		for _, k := range killed {
			names = append(names, fmt.Sprintf("%s (pid %d, %s)", k.Name, k.PID, k.Method))
		}
		fmt.Fprintf(p.w, "; had to kill: %s", strings.Join(names, ", "))
	}
	fmt.Fprintln(p.w)
}

// listenAdmin binds the admin endpoint and records its address in the state directory.
func listenAdmin(addr string, pool *ipc.Pool, series *seriesRecorder, stateDir string) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("admin endpoint %s: %w (choose another with --admin-addr)", addr, err)
	}
	if err := os.WriteFile(filepath.Join(stateDir, adminAddrFile), []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		_ = ln.Close()
		return nil, nil, err
	}
	return &http.Server{Handler: adminHandler(pool.Status, series, stateDir), ReadHeaderTimeout: 5 * time.Second}, ln, nil
}
