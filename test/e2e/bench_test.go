package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
	"github.com/hivemind-go/hivemind/worker"
)

// Benchmarks print their numbers next to a baseline measured in the same run; they assert nothing.
//
//	go test -run '^$' -bench . -benchtime 20x ./test/e2e

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startBinWorker(b *testing.B, ctx context.Context) *ipc.Worker {
	b.Helper()
	l, err := ipc.NewExecLauncher(ipc.ExecConfig{Path: bin})
	if err != nil {
		b.Fatal(err)
	}
	w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{Launcher: l, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func inProcessNode(b *testing.B, ctx context.Context) worker.Node {
	b.Helper()
	n, err := worker.NewLibp2pNode(ctx, worker.NodeSpec{Config: &ipcpb.NodeConfig{}, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkWorkerStartToReady: launching a worker process until its node is ready, next to creating
// the same node in process.
func BenchmarkWorkerStartToReady(b *testing.B) {
	ctx := context.Background()
	var proc, inproc []time.Duration
	for b.Loop() {
		t0 := time.Now()
		w := startBinWorker(b, ctx)
		proc = append(proc, time.Since(t0))
		w.Stop(ctx)

		t0 = time.Now()
		n := inProcessNode(b, ctx)
		inproc = append(inproc, time.Since(t0))
		_ = n.Close(ctx)
	}
	b.ReportMetric(float64(median(proc).Microseconds())/1000, "worker-ms/p50")
	b.ReportMetric(float64(median(inproc).Microseconds())/1000, "inproc-ms/p50")
	b.Logf("start-to-ready p50: worker process %v, in-process node %v (baseline)", median(proc), median(inproc))
}

// BenchmarkGetLocalKey: a Get of a key the node holds, through the worker (gRPC over the unix
// socket, AutoMTLS) next to the same Get on an in-process node. Target: ≤ 100 µs added at p50.
func BenchmarkGetLocalKey(b *testing.B) {
	ctx := context.Background()
	w := startBinWorker(b, ctx)
	defer w.Stop(ctx)
	n := inProcessNode(b, ctx)
	defer n.Close(ctx)
	key := dht.MustKey("bench")
	value, _ := msgpack.Marshal("value")
	item := dht.StoreItem{Key: key, Value: msgpack.Raw(value), Expiration: dht.SystemClock{}.Now() + 3600}
	if _, err := w.Store(ctx, item); err != nil {
		b.Fatal(err)
	}
	if _, err := n.Store(ctx, item); err != nil {
		b.Fatal(err)
	}
	var remote, local, health []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := w.Health(ctx); err != nil {
			b.Fatal(err)
		}
		health = append(health, time.Since(t0))
		t0 = time.Now()
		if r, err := w.Get(ctx, key, dht.GetOptions{}); err != nil || r == nil {
			b.Fatalf("worker get: %v %v", r, err)
		}
		remote = append(remote, time.Since(t0))
		t0 = time.Now()
		if r, err := n.Get(ctx, key, dht.GetOptions{}); err != nil || r == nil {
			b.Fatalf("in-process get: %v %v", r, err)
		}
		local = append(local, time.Since(t0))
	}
	added := median(remote) - median(local)
	b.ReportMetric(float64(median(remote).Nanoseconds())/1000, "worker-µs/p50")
	b.ReportMetric(float64(median(local).Nanoseconds())/1000, "inproc-µs/p50")
	b.ReportMetric(float64(added.Nanoseconds())/1000, "added-µs/p50")
	b.Logf("Get of a local key p50: worker %v, in-process %v (baseline), added %v (target ≤ 100µs); "+
		"an empty gRPC health check to the worker %v", median(remote), median(local), added, median(health))
}

// envBaselineServer makes this test binary, re-executed, a bare server for BenchmarkUnixSocketBaselines
// on the unix sockets <value>.grpc and <value>.echo.
const envBaselineServer = "HIVEMIND_E2E_BASELINE_SERVER"

func init() {
	if base := os.Getenv(envBaselineServer); base != "" {
		os.Exit(serveBaselines(base))
	}
}

// serveBaselines serves the gRPC health service (with a worker's server options, without go-plugin
// and TLS) and a byte echo, each on its own unix socket, until killed.
func serveBaselines(base string) int {
	gl, err := net.Listen("unix", base+".grpc")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	el, err := net.Listen("unix", base+".echo")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	s := grpc.NewServer(grpc.NumStreamWorkers(1),
		grpc.StaticStreamWindowSize(1<<20), grpc.StaticConnWindowSize(4<<20))
	hs := health.NewServer()
	hs.SetServingStatus(ipcpb.HealthService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	_ = s.Serve(gl)
	return 0
}

// BenchmarkUnixSocketBaselines: what a call between two processes costs below the worker, measured
// against a bare server process (GOMAXPROCS=1, as a worker): a 32-byte round trip on a unix socket,
// and the gRPC health check over a unix socket without go-plugin or TLS, next to the same check to a
// worker (go-plugin, AutoMTLS) and the worker's Get of a local key.
func BenchmarkUnixSocketBaselines(b *testing.B) {
	ctx := context.Background()
	base := filepath.Join(b.TempDir(), "baseline")
	srv := exec.Command(os.Args[0])
	srv.Env = append(os.Environ(), envBaselineServer+"="+base, "GOMAXPROCS=1")
	srv.Stderr = os.Stderr
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	}()
	dial := func(name string) net.Conn {
		for i := 0; ; i++ {
			c, err := net.Dial("unix", base+name)
			if err == nil {
				return c
			}
			if i == 500 {
				b.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	echo := dial(".echo")
	defer echo.Close()
	dial(".grpc").Close()
	cc, err := grpc.NewClient("passthrough:///baseline",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", base+".grpc")
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStaticStreamWindowSize(1<<20), grpc.WithStaticConnWindowSize(4<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	raw := healthpb.NewHealthClient(cc)
	w := startBinWorker(b, ctx)
	defer w.Stop(ctx)
	key := dht.MustKey("bench")
	value, _ := msgpack.Marshal("value")
	if _, err := w.Store(ctx, dht.StoreItem{Key: key, Value: msgpack.Raw(value), Expiration: dht.SystemClock{}.Now() + 3600}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 32)
	var sock, rawHealth, health, get []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := echo.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(echo, buf); err != nil {
			b.Fatal(err)
		}
		sock = append(sock, time.Since(t0))
		t0 = time.Now()
		if _, err := raw.Check(ctx, &healthpb.HealthCheckRequest{Service: ipcpb.HealthService}); err != nil {
			b.Fatal(err)
		}
		rawHealth = append(rawHealth, time.Since(t0))
		t0 = time.Now()
		if err := w.Health(ctx); err != nil {
			b.Fatal(err)
		}
		health = append(health, time.Since(t0))
		t0 = time.Now()
		if r, err := w.Get(ctx, key, dht.GetOptions{}); err != nil || r == nil {
			b.Fatalf("worker get: %v %v", r, err)
		}
		get = append(get, time.Since(t0))
	}
	b.ReportMetric(float64(median(sock).Nanoseconds())/1000, "socket-µs/p50")
	b.ReportMetric(float64(median(rawHealth).Nanoseconds())/1000, "grpc-health-µs/p50")
	b.ReportMetric(float64(median(health).Nanoseconds())/1000, "worker-health-µs/p50")
	b.ReportMetric(float64(median(get).Nanoseconds())/1000, "worker-get-µs/p50")
	b.Logf("round trip p50: unix socket %v; gRPC health check, no go-plugin or TLS %v; the same to a worker %v; "+
		"a worker's Get of a local key %v", median(sock), median(rawHealth), median(health), median(get))
}

// BenchmarkWorkerRSS: resident memory of an idle worker and after storing 10,000 keys (target idle
// ≤ 30 MiB), next to this test process's own RSS.
func BenchmarkWorkerRSS(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		w := startBinWorker(b, ctx)
		idle := rssMiB(b, w.PID())
		idleAnon := statusMiB(b, w.PID(), "RssAnon:")
		exp := dht.SystemClock{}.Now() + 3600
		for batch := range 20 {
			items := make([]dht.StoreItem, 500)
			for i := range items {
				items[i] = dht.StoreItem{Key: dht.MustKey(fmt.Sprintf("key-%d-%d", batch, i)), Value: i, Expiration: exp}
			}
			if _, err := w.StoreMany(ctx, items); err != nil {
				b.Fatal(err)
			}
		}
		loaded := rssMiB(b, w.PID())
		loadedAnon := statusMiB(b, w.PID(), "RssAnon:")
		w.Stop(ctx)
		b.ReportMetric(idle, "idle-MiB")
		b.ReportMetric(loaded, "10k-keys-MiB")
		b.ReportMetric(idleAnon, "idle-anon-MiB")
		b.Logf("worker RSS: idle %.1f MiB (target ≤ 30), after 10,000 keys %.1f MiB; this test process %.1f MiB",
			idle, loaded, rssMiB(b, os.Getpid()))
		b.Logf("of which anonymous (the rest is the executable's pages, shared with every process running it): "+
			"idle %.1f MiB, after 10,000 keys %.1f MiB", idleAnon, loadedAnon)
	}
}

// rssMiB reads VmRSS.
func rssMiB(b *testing.B, pid int) float64 {
	b.Helper()
	return statusMiB(b, pid, "VmRSS:")
}

// statusMiB reads one kB field of /proc/<pid>/status.
func statusMiB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s", field)
	return 0
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
