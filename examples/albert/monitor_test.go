package albert

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// TestAggregate mirrors run_training_monitor.py: step = max, alive peers = count, loss = Σloss /
// Σmini_steps, samples = Σsamples_accumulated, performance = Σsamples_per_second.
func TestAggregate(t *testing.T) {
	peer := func(sub string, m LocalMetrics) PeerMetrics { return PeerMetrics{Subkey: []byte(sub), Metrics: m} }
	tests := []struct {
		name  string
		peers []PeerMetrics
		want  Summary
	}{
		{name: "nobody", want: Summary{Loss: math.NaN()}},
		{
			name:  "one trainer",
			peers: []PeerMetrics{peer("a", LocalMetrics{Step: 4, SamplesPerSecond: 12.5, SamplesAccumulated: 256, Loss: 30, MiniSteps: 10})},
			want:  Summary{Step: 4, AlivePeers: 1, Loss: 3, Samples: 256, Performance: 12.5},
		},
		{
			name: "three trainers at different steps",
			peers: []PeerMetrics{
				peer("c", LocalMetrics{Step: 3, SamplesPerSecond: 10, SamplesAccumulated: 100, Loss: 10, MiniSteps: 4}),
				peer("a", LocalMetrics{Step: 5, SamplesPerSecond: 20.5, SamplesAccumulated: 300, Loss: 20, MiniSteps: 6}),
				peer("b", LocalMetrics{Step: 4, SamplesPerSecond: 0, SamplesAccumulated: 0, Loss: 0, MiniSteps: 0}),
			},
			want: Summary{Step: 5, AlivePeers: 3, Loss: 30.0 / 10, Samples: 400, Performance: 30.5},
		},
		{
			name:  "no mini-steps: loss undefined",
			peers: []PeerMetrics{peer("a", LocalMetrics{Step: 1}), peer("b", LocalMetrics{Step: 0})},
			want:  Summary{Step: 1, AlivePeers: 2, Loss: math.NaN()},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Aggregate(tc.peers)
			require.Len(t, got.Peers, len(tc.peers))
			for i := 1; i < len(got.Peers); i++ {
				require.Less(t, string(got.Peers[i-1].Subkey), string(got.Peers[i].Subkey), "ordered by subkey")
			}
			if math.IsNaN(tc.want.Loss) {
				require.True(t, math.IsNaN(got.Loss), "loss %v", got.Loss)
			} else {
				require.InDelta(t, tc.want.Loss, got.Loss, 1e-12)
			}
			got.Loss, tc.want.Loss, got.Peers = 0, 0, nil
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseMetricsSkipsBadEntries(t *testing.T) {
	entry := func(subkey, value any) dht.DictionaryEntry {
		s, err := msgpack.Marshal(subkey)
		require.NoError(t, err)
		v, err := msgpack.Marshal(value)
		require.NoError(t, err)
		return dht.DictionaryEntry{Subkey: s, Value: v, Expiration: 7}
	}
	good := LocalMetrics{Step: 1, SamplesPerSecond: 1, SamplesAccumulated: 1, Loss: 1, MiniSteps: 1}
	res := &dht.Result{IsDictionary: true, Dictionary: []dht.DictionaryEntry{
		entry([]byte("[owner:a]"), good.Value()),
		entry("a str subkey", good.Value()),
		entry([]byte("[owner:b]"), int64(3)),
	}}
	peers, skipped := ParseMetrics(res)
	require.Equal(t, 2, skipped)
	require.Equal(t, []PeerMetrics{{Subkey: []byte("[owner:a]"), Metrics: good, Expiration: 7}}, peers)

	peers, skipped = ParseMetrics(nil)
	require.Empty(t, peers)
	require.Zero(t, skipped)
	peers, _ = ParseMetrics(&dht.Result{Value: msgpack.Raw{0x01}})
	require.Empty(t, peers, "a regular value holds no metrics")
}

// recorder is a slog handler that keeps the messages it sees.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec.Level >= slog.LevelInfo {
		r.msgs = append(r.msgs, rec.Message)
	}
	return nil
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

// TestMonitorLogsNewSteps: the monitor logs "Step #<n>\tloss = <x>" only when the latest step
// changes (never for step 0, as albert starts from current_step = 0), every refresh period.
func TestMonitorLogsNewSteps(t *testing.T) {
	keyA, keyB := testKey(t, 0), testKey(t, 1)
	idA, idB := testIdentity(t, 0), testIdentity(t, 1)
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeDHT()
		a := fake.client(runValidator(t, DefaultRunID, keyA))
		b := fake.client(runValidator(t, DefaultRunID, keyB))
		publish := func(c dht.Client, id Identity, m LocalMetrics) {
			res, err := c.Store(t.Context(), dht.StoreItem{Key: MetricsKey(DefaultRunID), Subkey: id.OwnerMarker,
				Value: m.Value(), Expiration: dhtNow() + 600})
			require.NoError(t, err)
			require.True(t, res.Stored, "%+v at %v", m, dhtNow())
		}
		rec := &recorder{}
		var steps []Summary
		m, err := NewMonitor(fake.client(runValidator(t, DefaultRunID, keyA)), MonitorConfig{
			RefreshPeriod: 30 * time.Second, Logger: slog.New(rec),
			OnStep: func(s Summary) { steps = append(steps, s) },
		})
		require.NoError(t, err)
		publish(a, idA, LocalMetrics{Step: 0, Loss: 5, MiniSteps: 1})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- m.Serve(ctx) }()
		synctest.Wait()
		require.Empty(t, rec.messages(), "step 0 is not logged")
		s, ok := m.Latest()
		require.True(t, ok)
		require.Equal(t, 1, s.AlivePeers)

		time.Sleep(time.Second) // a later store must expire later to replace the previous one
		publish(a, idA, LocalMetrics{Step: 1, SamplesPerSecond: 10, SamplesAccumulated: 100, Loss: 20, MiniSteps: 8})
		publish(b, idB, LocalMetrics{Step: 1, SamplesPerSecond: 5.5, SamplesAccumulated: 60, Loss: 10, MiniSteps: 4})
		time.Sleep(29 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"Step #1\tloss = 2.50000"}, rec.messages())

		time.Sleep(30 * time.Second) // same step: nothing new
		synctest.Wait()
		require.Len(t, rec.messages(), 1)

		publish(b, idB, LocalMetrics{Step: 2, SamplesPerSecond: 6, SamplesAccumulated: 64, Loss: 9, MiniSteps: 3})
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"Step #1\tloss = 2.50000", "Step #2\tloss = 2.63636"}, rec.messages())
		require.Len(t, steps, 2)
		require.Equal(t, Summary{Step: 2, AlivePeers: 2, Loss: 29.0 / 11, Samples: 164, Performance: 16, Peers: steps[1].Peers}, steps[1])

		cancel()
		require.NoError(t, <-done)
	})
}
