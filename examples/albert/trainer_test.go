package albert

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// demoTrainerConfig is a run with epochs of about a second at 3 × ~160 samples/s.
func demoTrainerConfig(i int) TrainerConfig {
	return TrainerConfig{
		BatchSize:        16,
		SamplesPerSecond: 128 * (1 + float64(i)/4),
		Tracker: TrackerConfig{
			Progress: ProgressParams{
				TargetBatchSize:      512,
				MinRefreshPeriod:     250 * time.Millisecond,
				MaxRefreshPeriod:     5 * time.Second,
				DefaultRefreshPeriod: time.Second,
			},
			MetadataExpiration: 30 * time.Second,
		},
		Logger: discard(),
	}
}

// checkEpochs asserts the collaboration's epochs: every trainer reached minEpochs, and every epoch
// all of them went through was left only once the trainers together had contributed the target
// batch size, up to one mini-step in flight per trainer. An epoch some trainer left because its ETA
// (estimated from everybody's speed) had come is exempt: that is a legitimate decision of the
// protocol, and on real processes under load it can come before the target is reached.
func checkEpochs(t *testing.T, statuses []TrainerStatus, cfg TrainerConfig, minEpochs int64) {
	t.Helper()
	reached := statuses[0].Epoch
	contributed := map[int64]int64{}
	leftByETA := map[int64]bool{}
	for i, s := range statuses {
		require.GreaterOrEqual(t, s.Epoch, minEpochs, "trainer %d's epoch", i)
		reached = min(reached, s.Epoch)
		for _, h := range s.History {
			require.NotEqual(t, NotReady, h.Reason)
			require.Greater(t, h.Next, h.Epoch)
			if h.Reason == TargetReached {
				require.GreaterOrEqual(t, h.Global.SamplesAccumulated, h.Global.TargetBatchSize)
			}
			contributed[h.Epoch] += h.Samples
			leftByETA[h.Epoch] = leftByETA[h.Epoch] || h.Reason == ETAPassed
		}
	}
	target := cfg.Tracker.Progress.TargetBatchSize
	slack := int64(len(statuses)) * cfg.BatchSize
	for e := range reached {
		if leftByETA[e] {
			continue
		}
		require.GreaterOrEqual(t, contributed[e], target-slack, "samples contributed to epoch %d", e)
	}
}

// TestTrainersCollaborate runs three trainers and a monitor on the in-memory DHT for 15 virtual
// seconds: epochs advance together as the collaboration reaches the target batch size, the monitor
// aggregates exactly what the trainers last published, and every tracker leaves a tombstone.
func TestTrainersCollaborate(t *testing.T) {
	const n = 3
	ids := make([]Identity, n)
	for i := range ids {
		ids[i] = testIdentity(t, i)
		testKey(t, i)
	}
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeDHT()
		trainers := make([]*Trainer, n)
		for i := range trainers {
			var err error
			trainers[i], err = NewTrainer(fake.client(runValidator(t, DefaultRunID, testKey(t, i))), ids[i], demoTrainerConfig(i))
			require.NoError(t, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, tr := range trainers {
			wg.Go(func() { errs[i] = tr.Run(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "trainer %d", i)
		}

		statuses := make([]TrainerStatus, n)
		var published []PeerMetrics
		for i, tr := range trainers {
			s := tr.Status()
			statuses[i] = s
			require.NotNil(t, s.LastPublished, "trainer %d published nothing", i)
			require.Equal(t, s.Epoch, s.LastPublished.Step, "the last metrics are for the last epoch")
			last := s.History[len(s.History)-1]
			require.Equal(t, last.Samples, s.LastPublished.SamplesAccumulated, "metrics carry the samples of the epoch left")
			published = append(published, PeerMetrics{Subkey: ids[i].OwnerMarker, Metrics: *s.LastPublished})
		}
		checkEpochs(t, statuses, trainers[0].cfg, 8)

		m, err := NewMonitor(fake.client(runValidator(t, DefaultRunID, testKey(t, 3))), MonitorConfig{Logger: discard()})
		require.NoError(t, err)
		got, found, err := m.Refresh(t.Context())
		require.NoError(t, err)
		require.True(t, found)
		for i := range got.Peers {
			got.Peers[i].Expiration = 0
		}
		require.Equal(t, Aggregate(published), got)
		require.Equal(t, n, got.AlivePeers)

		entries := progressEntries(t, fake.client(runValidator(t, DefaultRunID, testKey(t, 3))))
		require.Len(t, entries, n)
		for _, p := range entries {
			require.Nil(t, p, "tombstone")
		}
	})
}

func TestSyntheticLoss(t *testing.T) {
	require.Equal(t, SyntheticLoss(7, 3, 11), SyntheticLoss(7, 3, 11), "deterministic")
	require.NotEqual(t, SyntheticLoss(7, 3, 11), SyntheticLoss(8, 3, 11), "seeded")
	for e := range int64(10) {
		require.Greater(t, SyntheticLoss(1, e, 100), SyntheticLoss(1, e+1, 100+e), "decreases with the epoch")
	}
	require.Greater(t, SyntheticLoss(1, 0, 0), 1.0)
}

func TestTrainerConfigValidate(t *testing.T) {
	require.NoError(t, TrainerConfig{}.Validate())
	for name, cfg := range map[string]TrainerConfig{
		"negative batch":   {BatchSize: -1},
		"negative speed":   {SamplesPerSecond: -1},
		"negative expiry":  {StatisticsExpiration: -time.Second},
		"bad tracker":      {Tracker: TrackerConfig{PerformanceEMAAlpha: 2}},
		"negative publish": {PublishTimeout: -time.Second},
	} {
		require.ErrorIs(t, cfg.Validate(), ErrInvalidConfig, name)
	}
	_, err := NewTrainer(nil, Identity{OwnerMarker: []byte("[owner:x]")}, TrainerConfig{})
	require.ErrorIs(t, err, ErrInvalidConfig, "nil client")
	_, err = NewTrainer(newFakeDHT().client(nil), Identity{}, TrainerConfig{})
	require.ErrorIs(t, err, ErrInvalidConfig, "no owner marker")
}
