package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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

// BenchmarkWorkerRSS: resident memory of an idle worker and after storing 10,000 keys (target idle
// ≤ 30 MiB), next to this test process's own RSS.
func BenchmarkWorkerRSS(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		w := startBinWorker(b, ctx)
		idle := rssMiB(b, w.PID())
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
		w.Stop(ctx)
		b.ReportMetric(idle, "idle-MiB")
		b.ReportMetric(loaded, "10k-keys-MiB")
		b.Logf("worker RSS: idle %.1f MiB (target ≤ 30), after 10,000 keys %.1f MiB; this test process %.1f MiB",
			idle, loaded, rssMiB(b, os.Getpid()))
	}
}

func rssMiB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS")
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
