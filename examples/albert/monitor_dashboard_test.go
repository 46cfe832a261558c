package albert

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mr-tron/base58"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/ipc"
)

// peersClient is a fake DHT client whose worker knows the given agents by base58 peer ID.
type peersClient struct {
	*fakeClient
	agents map[string]string
}

func (c peersClient) Stats(context.Context) (ipc.Stats, error) {
	var st ipc.Stats
	for id, agent := range c.agents {
		st.Peers = append(st.Peers, ipc.PeerStatus{PeerID: id, Agent: agent, Kind: ipc.PeerKindOf(agent), Connected: true})
	}
	return st, nil
}

// TestMonitorDashboard: two trainers (a Go worker and a hivemind peer, by their agents) report
// metrics and progress; the dashboard shows the latest summary, one history point per step holding
// the step's last summary, each trainer's metrics with its kind and last progress report, and the
// collaboration's epoch progress and ETA as ComputeGlobalProgress makes them.
func TestMonitorDashboard(t *testing.T) {
	keyA, keyB := testKey(t, 0), testKey(t, 1)
	idA, idB := testIdentity(t, 0), testIdentity(t, 1)
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeDHT()
		a := fake.client(runValidator(t, DefaultRunID, keyA))
		b := fake.client(runValidator(t, DefaultRunID, keyB))
		store := func(c dht.Client, key dht.Key, id Identity, v any) {
			res, err := c.Store(t.Context(), dht.StoreItem{Key: key, Subkey: id.OwnerMarker, Value: v, Expiration: dhtNow() + 600})
			require.NoError(t, err)
			require.True(t, res.Stored)
		}
		client := peersClient{
			fakeClient: fake.client(runValidator(t, DefaultRunID, keyA)),
			agents:     map[string]string{base58.Encode(idA.PeerID): "hivemind-go", base58.Encode(idB.PeerID): "p2pd/0.1"},
		}
		m, err := NewMonitor(client, MonitorConfig{RefreshPeriod: 10 * time.Second, TargetBatchSize: 1000,
			Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		d := m.Dashboard()
		assert.False(t, d.Found)
		assert.Nil(t, d.Loss)
		assert.Empty(t, d.History)

		store(a, MetricsKey(DefaultRunID), idA, LocalMetrics{Step: 1, SamplesPerSecond: 10, SamplesAccumulated: 100, Loss: 20, MiniSteps: 8}.Value())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Serve(ctx) }()
		synctest.Wait()
		time.Sleep(time.Second)
		store(b, MetricsKey(DefaultRunID), idB, LocalMetrics{Step: 1, SamplesPerSecond: 5, SamplesAccumulated: 60, Loss: 10, MiniSteps: 4}.Value())
		now := dhtNow()
		store(a, ProgressKey(DefaultRunID), idA, LocalProgress{PeerID: idA.PeerID, Epoch: 2, SamplesAccumulated: 300, SamplesPerSecond: 10, Time: now}.Value())
		store(b, ProgressKey(DefaultRunID), idB, LocalProgress{PeerID: idB.PeerID, Epoch: 2, SamplesAccumulated: 100, SamplesPerSecond: 5, Time: now - 2}.Value())
		time.Sleep(9 * time.Second)
		synctest.Wait()

		d = m.Dashboard()
		require.True(t, d.Found)
		assert.Equal(t, int64(1), d.Step)
		assert.Equal(t, 2, d.AlivePeers)
		assert.InDelta(t, 30.0/12, *d.Loss, 1e-12)
		require.Len(t, d.History, 1, "step 1 read twice: one point, the later summary")
		assert.Equal(t, 2, d.History[0].AlivePeers)
		assert.InDelta(t, 30.0/12, *d.History[0].Loss, 1e-12)
		assert.Equal(t, int64(160), d.History[0].Samples)

		assert.Equal(t, int64(2), d.Epoch)
		assert.Equal(t, int64(400), d.EpochSamples)
		assert.Equal(t, int64(1000), d.TargetBatchSize)
		reports := []*LocalProgress{
			{PeerID: idA.PeerID, Epoch: 2, SamplesAccumulated: 300, SamplesPerSecond: 10, Time: now},
			{PeerID: idB.PeerID, Epoch: 2, SamplesAccumulated: 100, SamplesPerSecond: 5, Time: now - 2},
		}
		want := ComputeGlobalProgress(ProgressParams{TargetBatchSize: 1000}, LocalProgress{}, 0, reports, true, now+9)
		require.NotNil(t, d.ETA)
		assert.InDelta(t, want.ETA, *d.ETA, 1e-6)

		require.Len(t, d.Peers, 2)
		byPeer := map[string]DashboardPeer{}
		for _, p := range d.Peers {
			byPeer[p.PeerID] = p
		}
		pa, pb := byPeer[base58.Encode(idA.PeerID)], byPeer[base58.Encode(idB.PeerID)]
		assert.Equal(t, ipc.PeerGo, pa.Kind)
		assert.Equal(t, ipc.PeerHivemind, pb.Kind)
		assert.Equal(t, "p2pd/0.1", pb.Agent)
		assert.InDelta(t, 2.5, *pa.Loss, 1e-12)
		assert.Equal(t, int64(300), pa.EpochSamples)
		assert.Equal(t, int64(2), *pb.Epoch)
		assert.InDelta(t, now-2, pb.LastReport, 1e-9)
		assert.Equal(t, shortMarker(idB.OwnerMarker), pb.Owner)

		time.Sleep(time.Second)
		store(a, MetricsKey(DefaultRunID), idA, LocalMetrics{Step: 2, SamplesPerSecond: 11, SamplesAccumulated: 120, Loss: 16, MiniSteps: 8}.Value())
		time.Sleep(10 * time.Second)
		synctest.Wait()
		d = m.Dashboard()
		require.Len(t, d.History, 2, "a new step: a new point")
		assert.Equal(t, int64(2), d.History[1].Step)
		assert.Less(t, d.History[0].Time, d.History[1].Time)

		cancel()
		require.NoError(t, <-done)
	})
}

// TestDashboardHandler: the page, its assets (nothing from another origin) and /data, the JSON
// form of Monitor.Dashboard.
func TestDashboardHandler(t *testing.T) {
	m, err := NewMonitor(newFakeDHT().client(nil), MonitorConfig{RunID: "run7", TargetBatchSize: 64})
	require.NoError(t, err)
	m.noteStep(Summary{Step: 3, AlivePeers: 1, Loss: 1.5, Performance: 8})
	srv := httptest.NewServer(DashboardHandler(m))
	t.Cleanup(srv.Close)
	external := regexp.MustCompile(`(src|href)="(https?:)?//|url\(\s*["']?(https?:)?//|import\s|fetch\("http`)
	tests := []struct{ path, ctype, contains string }{
		{path: "/", ctype: "text/html", contains: `<script src="/assets/app.js">`},
		{path: "/assets/app.js", ctype: "javascript", contains: `fetch("/data"`},
		{path: "/assets/shared/plot.js", ctype: "javascript", contains: "const Plot"},
		{path: "/assets/shared/base.css", ctype: "text/css", contains: "--s1:"},
		{path: "/assets/app.css", ctype: "text/css", contains: "@media (max-width"},
		{path: "/data", ctype: "application/json", contains: `"run_id":"run7"`},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Contains(t, resp.Header.Get("Content-Type"), tc.ctype)
			assert.Contains(t, string(body), tc.contains)
			assert.NotRegexp(t, external, string(body))
		})
	}
	resp, err := http.Get(srv.URL + "/data")
	require.NoError(t, err)
	defer resp.Body.Close()
	var d Dashboard
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&d))
	require.Len(t, d.History, 1)
	assert.Equal(t, int64(3), d.History[0].Step)
	assert.InDelta(t, 1.5, *d.History[0].Loss, 1e-12)
	assert.Equal(t, int64(64), d.TargetBatchSize)
	assert.Nil(t, d.ETA, "no progress read yet")
}
