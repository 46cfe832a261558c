package albert

import (
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func trackerConfig(target int64) TrackerConfig {
	return TrackerConfig{
		Progress: ProgressParams{
			TargetBatchSize:      target,
			MinRefreshPeriod:     500 * time.Millisecond,
			MaxRefreshPeriod:     10 * time.Second,
			DefaultRefreshPeriod: 3 * time.Second,
		},
		MetadataExpiration: 60 * time.Second,
		Logger:             discard(),
	}
}

// progressEntries reads the run's progress through c: owner marker → report (nil: tombstone).
func progressEntries(t *testing.T, c dht.Client) map[string]*LocalProgress {
	t.Helper()
	res, err := c.Get(t.Context(), ProgressKey(DefaultRunID), dht.GetOptions{Latest: true})
	require.NoError(t, err)
	out := map[string]*LocalProgress{}
	if res == nil {
		return out
	}
	for _, e := range res.Dictionary {
		p, err := ParseLocalProgress(e.Value)
		require.NoError(t, err)
		sub, err := decodeBytes(e.Subkey)
		require.NoError(t, err)
		out[string(sub)] = p
	}
	return out
}

// TestTrackerReportsAndLeavesATombstone: a peer reports only once it has samples, re-reports every
// half metadata expiration, and stores None under its subkey when it stops (§9.3 reporter, shutdown).
func TestTrackerReportsAndLeavesATombstone(t *testing.T) {
	key, id := testKey(t, 0), testIdentity(t, 0)
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeDHT()
		client := fake.client(runValidator(t, DefaultRunID, key))
		tr, err := NewTracker(client, id, trackerConfig(100))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- tr.Serve(ctx) }()

		synctest.Wait()
		require.Zero(t, fake.storeCount(), "no samples, no report")

		tr.ReportLocalProgress(0, 10)
		synctest.Wait()
		require.Equal(t, 1, fake.storeCount())
		entries := progressEntries(t, client)
		require.Len(t, entries, 1)
		got := entries[string(id.OwnerMarker)]
		require.NotNil(t, got)
		require.Equal(t, id.PeerID, got.PeerID)
		require.Equal(t, int64(10), got.SamplesAccumulated)

		time.Sleep(29 * time.Second) // virtual time
		synctest.Wait()
		require.Equal(t, 1, fake.storeCount(), "no re-report before half the metadata expiration")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, 2, fake.storeCount(), "re-report after half the metadata expiration")

		cancel()
		require.NoError(t, <-done)
		entries = progressEntries(t, client)
		require.Len(t, entries, 1)
		require.Nil(t, entries[string(id.OwnerMarker)], "tombstone")
	})
}

// TestTrackerCountsOptimisticallyAndUpdatesEpochs: local increments reach the global count at once
// while the epochs agree; UpdateEpoch raises the global epoch with no samples and an unknown ETA.
func TestTrackerCountsOptimisticallyAndUpdatesEpochs(t *testing.T) {
	id := testIdentity(t, 0)
	synctest.Test(t, func(t *testing.T) {
		tr, err := NewTracker(newFakeDHT().client(nil), id, trackerConfig(100))
		require.NoError(t, err)
		g := tr.GlobalProgress()
		require.Equal(t, int64(0), g.Epoch)
		require.True(t, math.IsInf(g.ETA, 1))

		time.Sleep(time.Second)
		tr.ReportLocalProgress(0, 30)
		time.Sleep(time.Second)
		tr.ReportLocalProgress(0, 50)
		require.Equal(t, int64(50), tr.GlobalProgress().SamplesAccumulated)
		// 30 then 20 samples per second: hivemind's EMA of seconds per sample, bias-corrected.
		wantSPS := 1 / ((0.1/20 + 0.9*0.1/30) / (1 - 0.9*0.9))
		require.InDelta(t, wantSPS, tr.LocalProgress().SamplesPerSecond, 1e-9)
		ready, _ := tr.ReadyToUpdateEpoch()
		require.False(t, ready)

		require.Equal(t, int64(1), tr.UpdateEpoch(1))
		g = tr.GlobalProgress()
		require.Equal(t, int64(1), g.Epoch)
		require.Zero(t, g.SamplesAccumulated)
		require.True(t, math.IsInf(g.ETA, 1))
		require.Equal(t, LocalProgress{PeerID: id.PeerID, Epoch: 1, SamplesPerSecond: tr.LocalProgress().SamplesPerSecond,
			Time: dhtNow()}, tr.LocalProgress())

		tr.ReportLocalProgress(1, 60)
		tr.ReportLocalProgress(1, 100)
		ready, reason := tr.ReadyToUpdateEpoch()
		require.True(t, ready)
		require.Equal(t, TargetReached, reason)
		require.True(t, tr.IsSynchronized())

		// Moving to an epoch behind the global one changes nothing globally.
		tr.UpdateEpoch(0)
		require.Equal(t, int64(1), tr.GlobalProgress().Epoch)
		require.True(t, tr.IsSynchronized(), "one epoch behind")
	})
}

// TestTrackersFollowEachOther: two trackers sum each other's samples after a fetch, and the one left
// behind sees the other's new epoch (GlobalEpochAhead).
func TestTrackersFollowEachOther(t *testing.T) {
	keyA, keyB := testKey(t, 0), testKey(t, 1)
	idA, idB := testIdentity(t, 0), testIdentity(t, 1)
	synctest.Test(t, func(t *testing.T) {
		fake := newFakeDHT()
		a, err := NewTracker(fake.client(runValidator(t, DefaultRunID, keyA)), idA, trackerConfig(100))
		require.NoError(t, err)
		b, err := NewTracker(fake.client(runValidator(t, DefaultRunID, keyB)), idB, trackerConfig(100))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 2)
		go func() { done <- a.Serve(ctx) }()
		go func() { done <- b.Serve(ctx) }()
		synctest.Wait()

		time.Sleep(time.Second)
		a.ReportLocalProgress(0, 60)
		b.ReportLocalProgress(0, 50)
		time.Sleep(3 * time.Second) // both fetch: nothing was found at start, so after the default refresh
		synctest.Wait()
		for name, tr := range map[string]*Tracker{"a": a, "b": b} {
			g := tr.GlobalProgress()
			require.Equal(t, 2, g.NumPeers, name)
			require.Equal(t, int64(110), g.SamplesAccumulated, name)
			ready, reason := tr.ReadyToUpdateEpoch()
			require.True(t, ready, name)
			require.Equal(t, TargetReached, reason, name)
		}

		a.UpdateEpoch(1)
		synctest.Wait()
		time.Sleep(10 * time.Second) // at most the max refresh period
		synctest.Wait()
		g := b.GlobalProgress()
		require.Equal(t, int64(1), g.Epoch)
		ready, reason := b.ReadyToUpdateEpoch()
		require.True(t, ready)
		require.Equal(t, GlobalEpochAhead, reason)
		require.True(t, b.IsSynchronized(), "one epoch behind is still synchronized")

		cancel()
		require.NoError(t, <-done)
		require.NoError(t, <-done)
		for _, p := range progressEntries(t, fake.client(runValidator(t, DefaultRunID, keyA))) {
			require.Nil(t, p, "every tracker left a tombstone")
		}
	})
}

func TestTrackerConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  TrackerConfig
		ok   bool
	}{
		{name: "zero is the default", ok: true},
		{name: "negative target", cfg: TrackerConfig{Progress: ProgressParams{TargetBatchSize: -1}}},
		{name: "negative period", cfg: TrackerConfig{Progress: ProgressParams{MinRefreshPeriod: -time.Second}}},
		{name: "min above max", cfg: TrackerConfig{Progress: ProgressParams{MinRefreshPeriod: 2 * time.Second, MaxRefreshPeriod: time.Second}}},
		{name: "NaN drift", cfg: TrackerConfig{Progress: ProgressParams{ExpectedDriftRate: math.NaN()}}},
		{name: "alpha above one", cfg: TrackerConfig{PerformanceEMAAlpha: 1.5}},
		{name: "negative expiration", cfg: TrackerConfig{MetadataExpiration: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
	d := TrackerConfig{Progress: ProgressParams{MaxRefreshPeriod: 200 * time.Millisecond}}.withDefaults()
	require.Equal(t, 200*time.Millisecond, d.Progress.MinRefreshPeriod, "the default min never exceeds a given max")
	d = TrackerConfig{Progress: ProgressParams{MinRefreshPeriod: time.Minute}}.withDefaults()
	require.Equal(t, time.Minute, d.Progress.MaxRefreshPeriod, "the default max never undercuts a given min")
}
