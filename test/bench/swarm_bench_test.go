package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// The swarm benchmarks run `supervisor bench` (cmd/supervisor/cmd_bench.go: the workloads live
// there, so the command and these benchmarks measure the same thing) on a binary built once, log
// its table and report its figures as metrics. Extra flags for every run (e.g. "--workers 32") go
// in HIVEMIND_SWARM_BENCH_ARGS.
//
//	go test -run '^$' -bench Swarm ./test/bench/

// envSwarmArgs holds extra flags of every swarm bench run, separated by spaces.
const envSwarmArgs = "HIVEMIND_SWARM_BENCH_ARGS"

// binDir holds the supervisor binary supervisorBin builds on first use; TestMain removes it.
var binDir string

// TestMain runs the package's tests and benchmarks, then removes the binary they built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var supervisorBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hivemind-bench")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "supervisor")
	build := exec.Command("go", "build", "-o", bin, "github.com/hivemind-go/hivemind/cmd/supervisor")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cmd/supervisor: %w\n%s", err, out)
	}
	return bin, nil
})

// swarmReport is the part of `supervisor bench --json` the benchmarks read.
type swarmReport struct {
	Workers int `json:"workers"`
	Latency *struct {
		UnaryP50Ms float64 `json:"unary_p50_ms"`
		CallP50Ms  float64 `json:"call_p50_ms"`
		Rows       []struct {
			Name       string  `json:"name"`
			Ops        int     `json:"ops"`
			OKRate     float64 `json:"ok_rate"`
			P50Ms      float64 `json:"p50_ms"`
			RoundsP50  float64 `json:"rounds_p50"`
			BaselineMs float64 `json:"baseline_ms"`
			Ratio      float64 `json:"ratio"`
		} `json:"rows"`
	} `json:"latency"`
	Throughput []struct {
		Name        string  `json:"name"`
		OKRate      float64 `json:"ok_rate"`
		OpsPerSec   float64 `json:"ops_per_sec"`
		RPCsPerOp   float64 `json:"rpcs_per_op"`
		UnaryPerSec float64 `json:"unary_per_sec"`
		UnaryOKRate float64 `json:"unary_ok_rate"`
		Ratio       float64 `json:"ratio"`
	} `json:"throughput"`
	Batch []struct {
		Name           string  `json:"name"`
		OKRate         float64 `json:"ok_rate"`
		KeysPerSec     float64 `json:"keys_per_sec"`
		SeparatePerSec float64 `json:"separate_per_sec"`
		SeparateOKRate float64 `json:"separate_ok_rate"`
		Ratio          float64 `json:"ratio"`
	} `json:"batch"`
	Start *struct {
		WorkerP50Ms    float64 `json:"worker_p50_ms"`
		InProcessP50Ms float64 `json:"in_process_p50_ms"`
		Ratio          float64 `json:"ratio"`
	} `json:"start"`
	RSS *struct {
		IdleMiB   float64 `json:"idle_mib"`
		LoadedMiB float64 `json:"loaded_mib"`
	} `json:"rss"`
}

// runSwarmBench runs `supervisor bench` with args (plus HIVEMIND_SWARM_BENCH_ARGS) and returns its
// figures and its table.
func runSwarmBench(tb testing.TB, args ...string) (swarmReport, string) {
	tb.Helper()
	bin, err := supervisorBin()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(tb.TempDir(), "bench.json")
	args = append(append([]string{"bench", "--json", out}, args...), strings.Fields(os.Getenv(envSwarmArgs))...)
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tb.Fatalf("supervisor %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	var rep swarmReport
	if err := json.Unmarshal(data, &rep); err != nil {
		tb.Fatal(err)
	}
	return rep, stdout.String()
}

var nonUnit = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// unit turns a row name into a metric unit ("get(latest)" → "get-latest").
func unit(name string) string {
	return strings.Trim(nonUnit.ReplaceAllString(strings.ReplaceAll(name, "→", "to"), "-"), "-")
}

// BenchmarkSwarmLatency: stores, get(latest), default gets, missing-key gets and local gets on a
// 16-worker swarm, one at a time, each kind's p50 next to its critical path (the node's sequential
// RPC rounds × the raw unary round trip + one parent→worker call). Targets: store, get(latest)
// and get(missing) ≤ 3× (never asserted).
func BenchmarkSwarmLatency(b *testing.B) {
	for b.Loop() {
		rep, table := runSwarmBench(b, "--only", "latency")
		b.Log("\n" + table)
		for _, r := range rep.Latency.Rows {
			b.ReportMetric(r.P50Ms, unit(r.Name)+"-p50-ms")
			b.ReportMetric(r.Ratio, unit(r.Name)+"/critical-path")
		}
		b.ReportMetric(rep.Latency.UnaryP50Ms, "unary-p50-ms")
	}
}

// BenchmarkSwarmThroughput: stores and gets in flight against one worker and spread over the swarm,
// next to raw unary calls/s at the same concurrency ÷ the RPCs per operation. Target ≥ 0.5.
func BenchmarkSwarmThroughput(b *testing.B) {
	for b.Loop() {
		rep, table := runSwarmBench(b, "--only", "throughput")
		b.Log("\n" + table)
		for _, r := range rep.Throughput {
			b.ReportMetric(r.OpsPerSec, unit(r.Name)+"-ops/s")
			b.ReportMetric(r.Ratio, unit(r.Name)+"/baseline")
		}
	}
}

// BenchmarkSwarmBatch: a StoreMany and a GetMany of 1,000 keys next to 1,000 separate calls in
// flight. Target ≥ 5×.
func BenchmarkSwarmBatch(b *testing.B) {
	for b.Loop() {
		rep, table := runSwarmBench(b, "--only", "batch")
		b.Log("\n" + table)
		for _, r := range rep.Batch {
			b.ReportMetric(r.KeysPerSec, unit(r.Name)+"-keys/s")
			b.ReportMetric(r.Ratio, unit(r.Name)+"/separate")
		}
	}
}

// BenchmarkSwarmStartAndRSS: a lone worker's start-to-ready next to the in-process node (targets ≤
// 25 ms p50 and ≤ 4×), its resident memory idle and after 10,000 keys (≤ 30 and ≤ 45 MiB).
func BenchmarkSwarmStartAndRSS(b *testing.B) {
	for b.Loop() {
		rep, table := runSwarmBench(b, "--only", "start,rss", "--workers", "2")
		b.Log("\n" + table)
		b.ReportMetric(rep.Start.WorkerP50Ms, "worker-start-p50-ms")
		b.ReportMetric(rep.Start.InProcessP50Ms, "inproc-start-p50-ms")
		b.ReportMetric(rep.Start.Ratio, "start/inproc")
		b.ReportMetric(rep.RSS.IdleMiB, "idle-MiB")
		b.ReportMetric(rep.RSS.LoadedMiB, "10k-keys-MiB")
	}
}

// TestSwarmBenchRuns: `supervisor bench` runs every workload on a small swarm and every operation
// succeeds, those of the baselines too (no figure is checked: they are measurements).
func TestSwarmBenchRuns(t *testing.T) {
	rep, table := runSwarmBench(t, "--workers", "3", "--ops", "3", "--inflight", "8", "--batch", "8",
		"--repeat", "1", "--starts", "1")
	t.Log("\n" + table)
	if rep.Workers != 3 || rep.Latency == nil || rep.Start == nil || rep.RSS == nil {
		t.Fatalf("incomplete report: %+v", rep)
	}
	ok := func(name string, rate float64) {
		if rate != 1 {
			t.Errorf("%s: %.0f%% of the operations succeeded", name, 100*rate)
		}
	}
	for _, r := range rep.Latency.Rows {
		ok(r.Name, r.OKRate)
	}
	for _, r := range rep.Throughput {
		ok(r.Name, r.OKRate)
		ok(r.Name+": raw unary calls", r.UnaryOKRate)
	}
	for _, r := range rep.Batch {
		ok(r.Name, r.OKRate)
		ok(r.Name+": separate calls", r.SeparateOKRate)
	}
	if len(rep.Latency.Rows) != 5 || len(rep.Throughput) != 4 || len(rep.Batch) != 2 {
		t.Errorf("rows: %d latency, %d throughput, %d batch; want 5, 4, 2",
			len(rep.Latency.Rows), len(rep.Throughput), len(rep.Batch))
	}
}
