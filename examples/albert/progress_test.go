package albert

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// params are hivemind ProgressTracker's defaults with a target of 1000 samples.
var params = ProgressParams{
	TargetBatchSize:      1000,
	MinRefreshPeriod:     500 * time.Millisecond,
	MaxRefreshPeriod:     10 * time.Second,
	DefaultRefreshPeriod: 3 * time.Second,
	ExpectedDriftPeers:   3,
	ExpectedDriftRate:    0.2,
}

const now = 1_000_000.0

func report(epoch, samples int64, sps, age float64) *LocalProgress {
	return &LocalProgress{Epoch: epoch, SamplesAccumulated: samples, SamplesPerSecond: sps, Time: now - age}
}

// TestComputeGlobalProgress checks spec/hivemind-dht.md §9.3 ("Global progress computation") case by
// case, with the numbers worked out from the formulas.
func TestComputeGlobalProgress(t *testing.T) {
	local := LocalProgress{Epoch: 2, SamplesAccumulated: 100}
	tests := []struct {
		name     string
		params   ProgressParams
		local    LocalProgress
		localSPS float64
		reports  []*LocalProgress
		found    bool
		want     GlobalProgress
	}{
		{
			name: "nothing found: local progress, local speed, default refresh", local: local, localSPS: 50,
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 100, TargetBatchSize: 1000,
				ETA: now + 900.0/50, NextFetch: now + 3},
		},
		{
			name: "nothing found and no speed yet: eta from the EMA's epsilon", local: local, localSPS: emaEpsilon,
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 100, TargetBatchSize: 1000,
				ETA: now + 900/emaEpsilon, NextFetch: now + 3},
		},
		{
			name: "empty dictionary counts as nothing found", local: local, localSPS: 50, found: true,
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 100, TargetBatchSize: 1000,
				ETA: now + 900.0/50, NextFetch: now + 3},
		},
		{
			name: "local samples beyond the target: eta now", local: LocalProgress{Epoch: 0, SamplesAccumulated: 1500}, localSPS: 10,
			want: GlobalProgress{SamplesAccumulated: 1500, TargetBatchSize: 1000, ETA: now, NextFetch: now + 3},
		},
		{
			// Tombstones only: a found dictionary takes the main path with no peers; the next fetch
			// is clip(0) = min refresh.
			name: "tombstones only", local: local, localSPS: 50, found: true, reports: []*LocalProgress{nil, nil},
			want: GlobalProgress{Epoch: 2, TargetBatchSize: 1000, ETA: now + 1000/emaEpsilon, NextFetch: now + 0.5},
		},
		{
			// estimated = (300 + 1×100) + (200 + 2×50) = 700; total = 150 → eta in 300/150 = 2 s;
			// max peers = max(2+3, 2×1.2) = 5 → next in clip(2 × 2/5) = 0.8 s.
			name: "two peers at the local epoch", local: local, localSPS: 100, found: true,
			reports: []*LocalProgress{report(2, 300, 100, 1), report(2, 200, 50, 2)},
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 500, TargetBatchSize: 1000, NumPeers: 2,
				ETA: now + 2, NextFetch: now + 0.8},
		},
		{
			// A peer at epoch 3 raises the global epoch; the two peers at epoch 2 no longer count
			// for samples, but all count for speed: estimated = 10 + 0, total = 60; max peers =
			// max(3+3, 3×1.2) = 6.
			name: "a peer ahead raises the global epoch", local: local, localSPS: 100, found: true,
			reports: []*LocalProgress{report(2, 900, 20, 0), report(3, 10, 10, 0), report(2, 50, 30, 0)},
			want: GlobalProgress{Epoch: 3, SamplesAccumulated: 10, TargetBatchSize: 1000, NumPeers: 3,
				ETA: now + 990/(emaEpsilon+60), NextFetch: now + 990/(emaEpsilon+60)*3/6},
		},
		{
			// Client peers are counted but never raise the epoch.
			name: "a client ahead does not raise the global epoch", local: local, localSPS: 100, found: true,
			reports: []*LocalProgress{report(2, 400, 100, 0), {Epoch: 9, SamplesAccumulated: 500, SamplesPerSecond: 100, Time: now, ClientMode: true}},
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 400, TargetBatchSize: 1000, NumPeers: 2, NumClients: 1,
				ETA: now + 600/(emaEpsilon+200), NextFetch: now + 600/(emaEpsilon+200)*2/5},
		},
		{
			// Peers behind the local epoch: the local epoch is the global one, nobody's samples count.
			name: "every peer behind us", local: local, localSPS: 100, found: true,
			reports: []*LocalProgress{report(1, 700, 100, 0)},
			want: GlobalProgress{Epoch: 2, TargetBatchSize: 1000, NumPeers: 1,
				ETA: now + 1000/(emaEpsilon+100), NextFetch: now + 2.5},
		},
		{
			// A report from the future is not extrapolated backwards (max(0, now − time)).
			name: "report from the future", local: local, localSPS: 100, found: true,
			reports: []*LocalProgress{report(2, 100, 100, -5)},
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 100, TargetBatchSize: 1000, NumPeers: 1,
				ETA: now + 900/(emaEpsilon+100), NextFetch: now + 900/(emaEpsilon+100)/4},
		},
		{
			// Stale reports are extrapolated: 100 + 10 s × 100 = 1100 ≥ 1000 → eta now, fetch soon.
			name: "extrapolation reaches the target", local: local, localSPS: 100, found: true,
			reports: []*LocalProgress{report(2, 100, 100, 10)},
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 100, TargetBatchSize: 1000, NumPeers: 1,
				ETA: now, NextFetch: now + 0.5},
		},
		{
			// Many peers: max peers = max(20+3, 20×1.2) = 24.
			name: "drift rate dominates with many peers", local: local, localSPS: 100, found: true,
			reports: repeat(report(2, 10, 1, 0), 20),
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 200, TargetBatchSize: 1000, NumPeers: 20,
				ETA: now + 800/(emaEpsilon+20), NextFetch: now + 10},
		},
		{
			name: "custom bounds clip the next fetch", local: local, localSPS: 100, found: true,
			params:  ProgressParams{TargetBatchSize: 1000, MinRefreshPeriod: 2 * time.Second, MaxRefreshPeriod: 4 * time.Second, ExpectedDriftPeers: 0, ExpectedDriftRate: 0},
			reports: []*LocalProgress{report(2, 990, 100, 0)},
			want: GlobalProgress{Epoch: 2, SamplesAccumulated: 990, TargetBatchSize: 1000, NumPeers: 1,
				ETA: now + 10/(emaEpsilon+100), NextFetch: now + 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := params
			if tc.params != (ProgressParams{}) {
				p = tc.params
			}
			got := ComputeGlobalProgress(p, tc.local, tc.localSPS, tc.reports, tc.found, now)
			require.InDelta(t, tc.want.ETA, got.ETA, 1e-6*math.Max(1, math.Abs(tc.want.ETA-now)), "eta")
			require.InDelta(t, tc.want.NextFetch, got.NextFetch, 1e-6, "next fetch")
			got.ETA, got.NextFetch, tc.want.ETA, tc.want.NextFetch = 0, 0, 0, 0
			require.Equal(t, tc.want, got)
		})
	}
}

func repeat(p *LocalProgress, n int) []*LocalProgress {
	out := make([]*LocalProgress, n)
	for i := range out {
		c := *p
		out[i] = &c
	}
	return out
}

// TestReadyToUpdateEpoch checks hivemind's decision rule and the order in which it names reasons.
func TestReadyToUpdateEpoch(t *testing.T) {
	g := GlobalProgress{Epoch: 5, SamplesAccumulated: 900, TargetBatchSize: 1000, ETA: now + 1}
	tests := []struct {
		name   string
		global GlobalProgress
		local  int64
		now    float64
		want   Reason
	}{
		{name: "in progress", global: g, local: 5, now: now, want: NotReady},
		{name: "global epoch ahead", global: g, local: 4, now: now, want: GlobalEpochAhead},
		{name: "global epoch ahead wins over the others", global: GlobalProgress{Epoch: 5, SamplesAccumulated: 2000, TargetBatchSize: 1000}, local: 3, now: now, want: GlobalEpochAhead},
		{name: "target reached exactly", global: GlobalProgress{Epoch: 5, SamplesAccumulated: 1000, TargetBatchSize: 1000, ETA: math.Inf(1)}, local: 5, now: now, want: TargetReached},
		{name: "eta passed", global: g, local: 5, now: now + 1, want: ETAPassed},
		{name: "unknown eta never passes", global: GlobalProgress{Epoch: 5, TargetBatchSize: 1000, ETA: math.Inf(1)}, local: 5, now: now + 1e9, want: NotReady},
		{name: "local ahead of the global epoch, target not reached", global: g, local: 6, now: now, want: NotReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready, reason := tc.global.ReadyToUpdateEpoch(tc.local, tc.now)
			require.Equal(t, tc.want, reason)
			require.Equal(t, tc.want != NotReady, ready)
		})
	}
}

// TestPerformanceEMA mirrors hivemind's PerformanceEMA: the first update is the measured rate
// (bias correction), a steady rate stays exact, and a reset excludes idle time.
func TestPerformanceEMA(t *testing.T) {
	e := newPerformanceEMA(0.1, 0)
	require.Equal(t, emaEpsilon, e.samplesPerSecond)
	require.InDelta(t, 32.0, e.update(32, 1), 1e-9, "first update: 32 samples in 1 s")
	for i := 2; i <= 10; i++ {
		require.InDelta(t, 32.0, e.update(32, float64(i)), 1e-9, "steady rate")
	}
	e.resetTimer(100) // 90 idle seconds are not counted
	require.InDelta(t, 32.0, e.update(64, 102), 1e-9)
	// A faster step moves the estimate a little (alpha = 0.1 on seconds per sample).
	got := e.update(64, 103)
	require.Greater(t, got, 32.0)
	require.Less(t, got, 40.0)
}
