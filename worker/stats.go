package worker

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// latencyBounds are the upper bounds of every latency histogram's buckets, from a local call on
// an idle machine to a DHT RPC that waits for its timeout. A stateless table.
var latencyBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	30 * time.Second,
}

// histogram counts durations in the fixed buckets of latencyBounds. Observing is lock-free and
// allocates nothing; a snapshot (proto) may be taken concurrently with observations, so its counts
// and sum can be one observation apart.
type histogram struct {
	counts   [len(latencyBounds) + 1]atomic.Uint64
	sumNanos atomic.Int64
}

// observe counts one duration.
func (h *histogram) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNanos.Add(int64(d))
}

// proto is a snapshot of the histogram.
func (h *histogram) proto() *ipcpb.Histogram {
	out := &ipcpb.Histogram{
		Bounds: make([]float64, len(latencyBounds)),
		Counts: make([]uint64, len(h.counts)),
		Sum:    time.Duration(h.sumNanos.Load()).Seconds(),
	}
	for i, b := range latencyBounds {
		out.Bounds[i] = b.Seconds()
	}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
	}
	return out
}

// The parent's calls, as counted by opStats.
const (
	opGet = iota
	opGetMany
	opStore
	opStoreMany
	numOps
)

// opNames are the names of the ops in Stats (OpCounter.name).
var opNames = [numOps]string{opGet: "get", opGetMany: "get_many", opStore: "store", opStoreMany: "store_many"}

// opStats counts one kind of call the parent makes.
type opStats struct {
	calls, failed atomic.Uint64
	latency       histogram
}

// done counts a call that started at t0 and ended with err.
func (o *opStats) done(t0 time.Time, err error) {
	o.latency.observe(time.Since(t0))
	o.calls.Add(1)
	if err != nil {
		o.failed.Add(1)
	}
}

// serverStats is what a Server measures on its own: the parent's calls and, when the node is the
// instrumented libp2p node (see instrumentedNode), its DHT RPCs and contacts.
type serverStats struct {
	ops [numOps]opStats
	dht dhtStats
}

// opsProto is a snapshot of the op counters.
func (s *serverStats) opsProto() []*ipcpb.OpCounter {
	out := make([]*ipcpb.OpCounter, numOps)
	for i := range s.ops {
		o := &s.ops[i]
		out[i] = &ipcpb.OpCounter{Name: opNames[i], Calls: o.calls.Load(), Failed: o.failed.Load(), Latency: o.latency.proto()}
	}
	return out
}

// processStats fills in the process's resident set size, heap in use and goroutines.
func processStats(out *ipcpb.StatsResponse) {
	out.RssBytes = residentBytes()
	out.Goroutines = uint32(runtime.NumGoroutine())
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		out.HeapBytes = sample[0].Value.Uint64()
	}
}

// residentBytes reads the process's resident set size from /proc/self/statm (0 where there is
// none).
func residentBytes() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := bytes.Fields(data)
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}
