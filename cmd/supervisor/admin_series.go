package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/ipc"
)

// Defaults of the series kept for the status page.
const (
	// seriesSample is how often the recorder looks at the pool's status; a point is recorded for
	// each new health check of a slot's worker (ipc.HealthConfig.Interval apart).
	seriesSample = time.Second
	// seriesPoints is how many points a slot keeps: 10 minutes at the default health interval.
	seriesPoints = 300
)

// seriesPoint is one interval between two health checks of a slot's worker: the requests it served
// (the calls the supervisor made to it and the DHT requests of its peers) and sent (its DHT
// requests), per second, and the latency percentiles of the requests it served. A point that
// follows a restart (or the first one) has no rates: the page draws a gap there.
type seriesPoint struct {
	// T is when the worker was measured (SlotStatus.StatsAt).
	T   time.Time `json:"t"`
	PID int       `json:"pid"`
	// Served is the number of requests the worker had served at T (cumulative).
	Served uint64 `json:"served"`
	// ServedPerSec, SentPerSec, P50 and P99 (milliseconds) cover the interval since the previous
	// point; P50 and P99 are null when nothing was served, every rate null after a restart.
	ServedPerSec *float64 `json:"served_per_sec"`
	SentPerSec   *float64 `json:"sent_per_sec"`
	P50          *float64 `json:"p50_ms"`
	P99          *float64 `json:"p99_ms"`
}

// slotSeries is one slot's ring of points and what the next point is measured against.
type slotSeries struct {
	Name   string        `json:"name"`
	Points []seriesPoint `json:"points"` // oldest first
	ring   [seriesPoints]seriesPoint
	n      int       // points held
	next   int       // index of the next write
	last   time.Time // StatsAt of the last point
	prev   slotSample
}

// slotSample is the cumulative figures of one health check.
type slotSample struct {
	pid    int
	at     time.Time
	served ipc.Histogram // every request served, merged
	sent   uint64
}

// seriesDoc is the JSON document served at /series.
type seriesDoc struct {
	Time  time.Time     `json:"time"`
	Slots []*slotSeries `json:"slots"`
}

// seriesRecorder keeps recent points of every slot for the page's plots, from the pool's status.
// Serve is its one writer; Snapshot may be called from any goroutine (one lock, held around pure
// work only).
type seriesRecorder struct {
	status func() ipc.Status

	mu    sync.Mutex
	slots []*slotSeries
}

func newSeriesRecorder(status func() ipc.Status) *seriesRecorder {
	return &seriesRecorder{status: status}
}

// Serve samples the status every seriesSample until ctx ends; it returns nil then.
func (r *seriesRecorder) Serve(ctx context.Context) error {
	t := time.NewTicker(seriesSample)
	defer t.Stop()
	for {
		r.record(r.status())
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// record adds a point for every slot measured since the last call.
func (r *seriesRecorder) record(st ipc.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.slots) < len(st.Slots) {
		r.slots = append(r.slots, &slotSeries{Name: st.Slots[len(r.slots)].Name})
	}
	for i, s := range st.Slots {
		ss := r.slots[i]
		if s.StatsAt.IsZero() || !s.StatsAt.After(ss.last) {
			continue
		}
		cur := sampleOf(s)
		ss.add(pointBetween(ss.prev, cur))
		ss.last, ss.prev = s.StatsAt, cur
	}
}

func sampleOf(s ipc.SlotStatus) slotSample {
	out := slotSample{pid: s.StatsPID, at: s.StatsAt}
	for _, o := range s.Ops {
		out.served = mergeHistograms(out.served, o.Latency)
	}
	for _, r := range s.RPCs {
		out.served = mergeHistograms(out.served, r.ReceivedLatency)
		out.sent += r.Sent
	}
	return out
}

// mergeHistograms adds b to a (same bounds; a histogram with other bounds is left out). a is
// the merger's own; b is not written.
func mergeHistograms(a, b ipc.Histogram) ipc.Histogram {
	if len(b.Counts) == 0 {
		return a
	}
	if len(a.Counts) == 0 {
		return ipc.Histogram{Bounds: b.Bounds, Counts: append([]uint64(nil), b.Counts...), Sum: b.Sum}
	}
	if len(a.Counts) != len(b.Counts) || !slices.Equal(a.Bounds, b.Bounds) {
		return a
	}
	for i, c := range b.Counts {
		a.Counts[i] += c
	}
	a.Sum += b.Sum
	return a
}

// pointBetween makes the point of cur; its rates cover the interval since prev when both come from
// the same worker.
func pointBetween(prev, cur slotSample) seriesPoint {
	p := seriesPoint{T: cur.at, PID: cur.pid, Served: cur.served.Count()}
	dt := cur.at.Sub(prev.at).Seconds()
	if prev.pid != cur.pid || prev.at.IsZero() || dt <= 0 || cur.sent < prev.sent || p.Served < prev.served.Count() {
		return p
	}
	d := cur.served.Sub(prev.served)
	p.ServedPerSec = ptr(float64(d.Count()) / dt)
	p.SentPerSec = ptr(float64(cur.sent-prev.sent) / dt)
	if q := d.Quantile(0.5); !math.IsNaN(q) {
		p.P50 = ptr(q * 1000)
	}
	if q := d.Quantile(0.99); !math.IsNaN(q) {
		p.P99 = ptr(q * 1000)
	}
	return p
}

func ptr(v float64) *float64 { return &v }

func (s *slotSeries) add(p seriesPoint) {
	s.ring[s.next] = p
	s.next = (s.next + 1) % seriesPoints
	s.n = min(s.n+1, seriesPoints)
}

// Snapshot returns a copy of every slot's points, oldest first.
func (r *seriesRecorder) Snapshot() seriesDoc {
	r.mu.Lock()
	defer r.mu.Unlock()
	doc := seriesDoc{Time: time.Now(), Slots: make([]*slotSeries, len(r.slots))}
	for i, s := range r.slots {
		out := &slotSeries{Name: s.Name, Points: make([]seriesPoint, 0, s.n)}
		start := (s.next - s.n + seriesPoints) % seriesPoints
		for j := range s.n {
			out.Points = append(out.Points, s.ring[(start+j)%seriesPoints])
		}
		doc.Slots[i] = out
	}
	return doc
}
