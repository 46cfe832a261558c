package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/ipc"
)

// testBounds are a worker histogram's bounds (seconds) in these tests.
var testBounds = []float64{0.001, 0.01, 0.1}

// testStatus is a pool of two slots: worker-1 running with figures from a health check, worker-2
// restarting with none.
func testStatus(at time.Time) ipc.Status {
	return ipc.Status{Slots: []ipc.SlotStatus{
		{
			Name: "worker-1", State: ipc.SlotRunning, PID: 10, StatsPID: 10, PeerID: "Qm1", Restarts: 2,
			RoutingTableSize: 3, StoredKeys: 4, CachedKeys: 5, ConnectedPeers: 2, RSSBytes: 1 << 20,
			HeapBytes: 1 << 19, Goroutines: 17, StatsAt: at,
			Ops: []ipc.OpStats{
				{Name: "get", Calls: 6, Failed: 1, Latency: ipc.Histogram{Bounds: testBounds, Counts: []uint64{1, 2, 3, 0}, Sum: 0.2}},
				{Name: "store", Calls: 0, Latency: ipc.Histogram{Bounds: testBounds, Counts: []uint64{0, 0, 0, 0}}},
			},
			RPCs: []ipc.RPCStats{{
				Name: "rpc_find", Sent: 7, SentFailed: 1, Received: 9, ReceivedFailed: 2,
				SentLatency:     ipc.Histogram{Bounds: testBounds, Counts: []uint64{0, 7, 0, 0}, Sum: 0.03},
				ReceivedLatency: ipc.Histogram{Bounds: testBounds, Counts: []uint64{9, 0, 0, 0}, Sum: 0.001},
			}},
			Peers: []ipc.PeerStatus{
				{PeerID: "QmA", Kind: ipc.PeerGo, Connected: true},
				{PeerID: "QmB", Kind: ipc.PeerHivemind, Connected: true, Relayed: true},
				{PeerID: "QmC", Kind: ipc.PeerHivemind, Connected: true},
				{PeerID: "QmD", Kind: ipc.PeerUnknown},
			},
			NAT: ipc.NATStatus{
				Reachability: "private", KadMode: "client", Relay: true, RelayService: true, AutoRelay: true, AutoNAT: true,
				RelayAddrs: []string{"/ip4/11.0.0.10/tcp/4001/p2p/QmR/p2p-circuit"}, Reservations: []string{"QmR"},
				CircuitsOpen: 1, CircuitsTotal: 5, CircuitsRefused: 2, ReservationsHeld: 3, RelayedBytes: 1000,
				HolePunches: 4, HolePunchFailures: 1, DirectConns: 2, RelayedConns: 1,
			},
		},
		{Name: "worker-2", State: ipc.SlotBackoff},
	}}
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	require.NoError(t, err)
	return fams
}

// value returns the value of the family's metric whose labels include want; ok is false when none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsExposition reads /metrics with Prometheus' own text parser: the historical names, the
// workers' relayed figures as labelled series, the latency histograms per operation and per DHT
// RPC and direction (cumulative buckets), and the supervisor's Go runtime and process collectors.
func TestMetricsExposition(t *testing.T) {
	fams := scrape(t, metricsHandler(func() ipc.Status { return testStatus(time.Now()) }))
	w1, w2 := map[string]string{"slot": "worker-1"}, map[string]string{"slot": "worker-2"}
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
		typ    dto.MetricType
	}{
		{name: "up", metric: "hivemind_worker_up", labels: w1, want: 1, typ: dto.MetricType_GAUGE},
		{name: "down while restarting", metric: "hivemind_worker_up", labels: w2, want: 0, typ: dto.MetricType_GAUGE},
		{name: "restarts", metric: "hivemind_worker_restarts_total", labels: w1, want: 2, typ: dto.MetricType_COUNTER},
		{name: "routing table", metric: "hivemind_dht_routing_table_size", labels: w1, want: 3, typ: dto.MetricType_GAUGE},
		{name: "stored keys", metric: "hivemind_dht_stored_keys", labels: w1, want: 4, typ: dto.MetricType_GAUGE},
		{name: "connected peers", metric: "hivemind_p2p_connected_peers", labels: w1, want: 2, typ: dto.MetricType_GAUGE},
		{name: "info", metric: "hivemind_worker_info", labels: map[string]string{"slot": "worker-1", "state": "running", "pid": "10", "peer_id": "Qm1"}, want: 1, typ: dto.MetricType_GAUGE},
		{name: "cached keys", metric: "hivemind_dht_cached_keys", labels: w1, want: 5, typ: dto.MetricType_GAUGE},
		{name: "rss", metric: "hivemind_worker_resident_memory_bytes", labels: w1, want: 1 << 20, typ: dto.MetricType_GAUGE},
		{name: "goroutines", metric: "hivemind_worker_goroutines", labels: w1, want: 17, typ: dto.MetricType_GAUGE},
		{name: "get latency histogram", metric: "hivemind_worker_op_duration_seconds", labels: map[string]string{"slot": "worker-1", "op": "get"}, want: 6, typ: dto.MetricType_HISTOGRAM},
		{name: "get errors", metric: "hivemind_worker_op_errors_total", labels: map[string]string{"slot": "worker-1", "op": "get"}, want: 1, typ: dto.MetricType_COUNTER},
		{name: "find sent", metric: "hivemind_dht_rpc_sent_total", labels: map[string]string{"slot": "worker-1", "rpc": "rpc_find"}, want: 7, typ: dto.MetricType_COUNTER},
		{name: "find received failed", metric: "hivemind_dht_rpc_received_failed_total", labels: map[string]string{"slot": "worker-1", "rpc": "rpc_find"}, want: 2, typ: dto.MetricType_COUNTER},
		{name: "find sent latency", metric: "hivemind_dht_rpc_duration_seconds", labels: map[string]string{"slot": "worker-1", "rpc": "rpc_find", "direction": "sent"}, want: 7, typ: dto.MetricType_HISTOGRAM},
		{name: "find received latency", metric: "hivemind_dht_rpc_duration_seconds", labels: map[string]string{"slot": "worker-1", "rpc": "rpc_find", "direction": "received"}, want: 9, typ: dto.MetricType_HISTOGRAM},
		{name: "relayed hivemind peers", metric: "hivemind_p2p_peers", labels: map[string]string{"slot": "worker-1", "kind": "hivemind", "transport": "relayed"}, want: 1, typ: dto.MetricType_GAUGE},
		{name: "direct hivemind peers", metric: "hivemind_p2p_peers", labels: map[string]string{"slot": "worker-1", "kind": "hivemind", "transport": "direct"}, want: 1, typ: dto.MetricType_GAUGE},
		{name: "direct go peers", metric: "hivemind_p2p_peers", labels: map[string]string{"slot": "worker-1", "kind": "go", "transport": "direct"}, want: 1, typ: dto.MetricType_GAUGE},
		{name: "reachability", metric: "hivemind_p2p_reachability", labels: map[string]string{"slot": "worker-1", "reachability": "private"}, want: 1, typ: dto.MetricType_GAUGE},
		{name: "not public", metric: "hivemind_p2p_reachability", labels: map[string]string{"slot": "worker-1", "reachability": "public"}, want: 0, typ: dto.MetricType_GAUGE},
		{name: "relay reservations", metric: "hivemind_p2p_relay_reservations", labels: w1, want: 1, typ: dto.MetricType_GAUGE},
		{name: "circuits relayed now", metric: "hivemind_p2p_relay_circuits", labels: w1, want: 1, typ: dto.MetricType_GAUGE},
		{name: "circuits relayed", metric: "hivemind_p2p_relay_circuits_total", labels: w1, want: 5, typ: dto.MetricType_COUNTER},
		{name: "circuits refused", metric: "hivemind_p2p_relay_circuits_refused_total", labels: w1, want: 2, typ: dto.MetricType_COUNTER},
		{name: "reservations served", metric: "hivemind_p2p_relay_reservations_served", labels: w1, want: 3, typ: dto.MetricType_GAUGE},
		{name: "relayed bytes", metric: "hivemind_p2p_relayed_bytes_total", labels: w1, want: 1000, typ: dto.MetricType_COUNTER},
		{name: "hole punches", metric: "hivemind_p2p_hole_punches_total", labels: map[string]string{"slot": "worker-1", "result": "success"}, want: 4, typ: dto.MetricType_COUNTER},
		{name: "failed hole punches", metric: "hivemind_p2p_hole_punches_total", labels: map[string]string{"slot": "worker-1", "result": "failure"}, want: 1, typ: dto.MetricType_COUNTER},
		{name: "relayed connections", metric: "hivemind_p2p_connections", labels: map[string]string{"slot": "worker-1", "transport": "relayed"}, want: 1, typ: dto.MetricType_GAUGE},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := value(fams, tc.metric, tc.labels)
			require.True(t, ok, "%s%v missing", tc.metric, tc.labels)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.typ, fams[tc.metric].GetType())
		})
	}
	t.Run("a worker without figures has no relayed series", func(t *testing.T) {
		_, ok := value(fams, "hivemind_worker_resident_memory_bytes", w2)
		assert.False(t, ok)
		_, ok = value(fams, "hivemind_p2p_reachability", w2)
		assert.False(t, ok)
		_, ok = value(fams, "hivemind_p2p_peers", map[string]string{"kind": "unknown"})
		assert.False(t, ok, "peers that are not connected are not counted")
	})
	t.Run("buckets are cumulative", func(t *testing.T) {
		checked := 0
		for _, m := range fams["hivemind_worker_op_duration_seconds"].GetMetric() {
			if m.GetLabel()[0].GetValue() != "get" {
				continue
			}
			checked++
			var got []uint64
			for _, b := range m.GetHistogram().GetBucket() {
				got = append(got, b.GetCumulativeCount())
			}
			assert.Equal(t, []uint64{1, 3, 6, 6}, got, "the last bucket is +Inf")
			assert.InDelta(t, 0.2, m.GetHistogram().GetSampleSum(), 1e-12)
		}
		assert.Equal(t, 1, checked, "worker-1's get histogram")
	})
	t.Run("the supervisor's own collectors", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
			assert.Contains(t, fams, name)
		}
	})
}

// TestSeriesPoints: the recorder makes one point per health check of a slot; the rates and
// percentiles cover the interval since the previous point of the same worker; a new worker (or
// the first point) has no rates.
func TestSeriesPoints(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	slot := func(pid int, at time.Time, served []uint64, sent uint64) ipc.Status {
		return ipc.Status{Slots: []ipc.SlotStatus{{
			Name: "worker-1", State: ipc.SlotRunning, StatsPID: pid, StatsAt: at,
			Ops:  []ipc.OpStats{{Name: "get", Latency: ipc.Histogram{Bounds: testBounds, Counts: served}}},
			RPCs: []ipc.RPCStats{{Name: "rpc_find", Sent: sent}},
		}}}
	}
	r := newSeriesRecorder(nil)
	r.record(ipc.Status{Slots: []ipc.SlotStatus{{Name: "worker-1", State: ipc.SlotStarting}}}) // no figures yet
	r.record(slot(10, t0, []uint64{0, 0, 0, 0}, 0))
	r.record(slot(10, t0, []uint64{0, 0, 0, 0}, 0)) // the same health check again: no point
	r.record(slot(10, t0.Add(2*time.Second), []uint64{10, 10, 0, 0}, 4))
	r.record(slot(10, t0.Add(4*time.Second), []uint64{10, 10, 0, 0}, 4))
	r.record(slot(11, t0.Add(9*time.Second), []uint64{1, 0, 0, 0}, 0)) // restarted
	pts := r.Snapshot().Slots[0].Points
	require.Len(t, pts, 4)

	assert.Nil(t, pts[0].ServedPerSec, "the first point has no rates")
	require.NotNil(t, pts[1].ServedPerSec)
	assert.InDelta(t, 10.0, *pts[1].ServedPerSec, 1e-9)
	assert.InDelta(t, 2.0, *pts[1].SentPerSec, 1e-9)
	assert.InDelta(t, 1.0, *pts[1].P50, 1e-9, "the median is the top of the first bucket (1 ms)")
	assert.InDelta(t, 1+9*0.98, *pts[1].P99, 1e-9)
	assert.Equal(t, uint64(20), pts[1].Served)
	assert.InDelta(t, 0.0, *pts[2].ServedPerSec, 1e-9)
	assert.Nil(t, pts[2].P50, "nothing served: no percentile")
	assert.Nil(t, pts[3].ServedPerSec, "a new worker: a gap")
	assert.Equal(t, 11, pts[3].PID)

	for i := range seriesPoints + 5 {
		r.record(slot(11, t0.Add(time.Duration(10+i)*time.Second), []uint64{1, 0, 0, 0}, 0))
	}
	pts = r.Snapshot().Slots[0].Points
	require.Len(t, pts, seriesPoints, "the ring keeps the last points")
	assert.Equal(t, t0.Add(time.Duration(10+seriesPoints+4)*time.Second), pts[len(pts)-1].T)
	assert.True(t, pts[0].T.Before(pts[1].T))
}

// TestMergeHistograms: the served requests of a slot's point merge histograms of the same bounds
// only; one of other bounds is left out, never added bucket by bucket.
func TestMergeHistograms(t *testing.T) {
	h := func(bounds []float64, counts ...uint64) ipc.Histogram {
		return ipc.Histogram{Bounds: bounds, Counts: counts, Sum: float64(len(counts))}
	}
	other := []float64{0.01, 0.02, 0.03}
	tests := []struct {
		name string
		a, b ipc.Histogram
		want ipc.Histogram
	}{
		{name: "into nothing", a: ipc.Histogram{}, b: h(testBounds, 1, 2, 3, 4), want: h(testBounds, 1, 2, 3, 4)},
		{name: "nothing into one", a: h(testBounds, 1, 2, 3, 4), b: ipc.Histogram{}, want: h(testBounds, 1, 2, 3, 4)},
		{name: "same bounds", a: h(testBounds, 1, 2, 3, 4), b: h(testBounds, 1, 1, 1, 1),
			want: ipc.Histogram{Bounds: testBounds, Counts: []uint64{2, 3, 4, 5}, Sum: 8}},
		{name: "other bounds, as many buckets", a: h(testBounds, 1, 2, 3, 4), b: h(other, 1, 1, 1, 1), want: h(testBounds, 1, 2, 3, 4)},
		{name: "fewer buckets", a: h(testBounds, 1, 2, 3, 4), b: h(testBounds[:2], 1, 1, 1), want: h(testBounds, 1, 2, 3, 4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			bCounts := slices.Clone(b.Counts)
			assert.Equal(t, tc.want, mergeHistograms(tc.a, tc.b))
			assert.Equal(t, bCounts, b.Counts, "b is not written")
		})
	}
}

// TestAdminEndpoint: the page and its assets, /status and /series, each with its content type; the
// page loads nothing from another origin.
func TestAdminEndpoint(t *testing.T) {
	at := time.Now()
	series := newSeriesRecorder(nil)
	series.record(testStatus(at))
	srv := httptest.NewServer(adminHandler(func() ipc.Status { return testStatus(at) }, series, "/state"))
	t.Cleanup(srv.Close)
	get := func(path string) (string, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body), resp.Header.Get("Content-Type")
	}
	tests := []struct {
		path, ctype, contains string
	}{
		{path: "/", ctype: "text/html", contains: `<script src="/assets/app.js">`},
		{path: "/assets/app.js", ctype: "javascript", contains: `getJSON("/status")`},
		{path: "/assets/shared/plot.js", ctype: "javascript", contains: "const Plot"},
		{path: "/assets/shared/base.css", ctype: "text/css", contains: "--s1:"},
		{path: "/assets/app.css", ctype: "text/css", contains: "@media (max-width"},
		{path: "/status", ctype: "application/json", contains: `"routing_table_size": 3`},
		{path: "/series", ctype: "application/json", contains: `"name": "worker-1"`},
	}
	external := regexp.MustCompile(`(src|href)="(https?:)?//|url\(\s*["']?(https?:)?//|import\s|fetch\("http`)
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			body, ctype := get(tc.path)
			assert.Contains(t, ctype, tc.ctype)
			assert.Contains(t, body, tc.contains)
			if !strings.HasSuffix(ctype, "json") {
				assert.NotRegexp(t, external, body, "nothing from another origin")
			}
		})
	}
	body, _ := get("/status")
	var doc adminStatus
	require.NoError(t, json.Unmarshal([]byte(body), &struct {
		Slots    *[]json.RawMessage `json:"slots"`
		StateDir *string            `json:"state_dir"`
	}{StateDir: &doc.StateDir}))
	assert.Equal(t, "/state", doc.StateDir)

	resp, err := http.Get(srv.URL + "/nothing")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}
