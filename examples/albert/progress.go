package albert

import (
	"math"
	"time"
)

// ProgressParams are the tracker settings that enter the global-progress computation
// (hivemind's ProgressTracker arguments).
type ProgressParams struct {
	// TargetBatchSize is the number of samples the collaboration accumulates per epoch; agreed out of
	// band by every peer of a run.
	TargetBatchSize int64
	// MinRefreshPeriod and MaxRefreshPeriod bound the wait before the next fetch of the run's
	// progress.
	MinRefreshPeriod time.Duration
	MaxRefreshPeriod time.Duration
	// DefaultRefreshPeriod is the wait before the next fetch when no peer reported anything.
	DefaultRefreshPeriod time.Duration
	// ExpectedDriftPeers and ExpectedDriftRate: assume that this many peers, or this fraction of the
	// collaboration, can join between epochs (fetch sooner when there may be more peers than seen).
	ExpectedDriftPeers float64
	ExpectedDriftRate  float64
}

// GlobalProgress is hivemind's GlobalTrainingProgress: the collaboration's state as one peer
// estimates it.
type GlobalProgress struct {
	// Epoch is the collaboration's epoch: the largest epoch of a non-client peer, or ours.
	Epoch int64
	// SamplesAccumulated sums the samples the peers at Epoch reported.
	SamplesAccumulated int64
	// TargetBatchSize is ProgressParams.TargetBatchSize.
	TargetBatchSize int64
	// NumPeers counts the peers with a live (non-tombstone) report; NumClients the client-mode ones
	// among them.
	NumPeers   int
	NumClients int
	// ETA is the DHT time at which the collaboration is expected to reach TargetBatchSize; +Inf right
	// after an epoch change, until the next fetch.
	ETA float64
	// NextFetch is the DHT time of the next fetch.
	NextFetch float64
}

// emaEpsilon is PerformanceEMA's eps: the smallest throughput, and the start of every sum of them.
const emaEpsilon = 1e-20

// ComputeGlobalProgress is hivemind's ProgressTracker._parse_swarm_progress_data: it estimates the
// collaboration's progress at DHT time now from the reports found under the progress key. local is
// this peer's own progress and localSPS its performance EMA. reports holds one entry per subkey
// found, nil for a tombstone; found is false when the key held nothing at all (or no dictionary).
//
// With nothing found, the estimate is local: our epoch and samples, an ETA from our own speed, and
// the next fetch after DefaultRefreshPeriod. Otherwise, ignoring tombstones:
//
//	epoch     = max(local epoch, epochs of non-client peers)
//	samples   = Σ samples of the peers at epoch
//	estimated = Σ (samples + max(0, now − time) × samples_per_second) over the peers at epoch
//	total_sps = 1e-20 + Σ samples_per_second (all peers)
//	eta       = now + max(0, target − estimated) / total_sps
//	max_peers = max(peers + drift_peers, peers × (1 + drift_rate))
//	next      = now + clip((eta − now) × peers / max_peers, min_refresh, max_refresh)
//
// (A found dictionary holding only tombstones takes the second path with no peers, as in hivemind.)
func ComputeGlobalProgress(p ProgressParams, local LocalProgress, localSPS float64, reports []*LocalProgress,
	found bool, now float64) GlobalProgress {
	target := p.TargetBatchSize
	if !found || len(reports) == 0 {
		remaining := float64(max(0, target-local.SamplesAccumulated))
		return GlobalProgress{
			Epoch:              local.Epoch,
			SamplesAccumulated: local.SamplesAccumulated,
			TargetBatchSize:    target,
			ETA:                now + remaining/math.Max(localSPS, emaEpsilon),
			NextFetch:          now + p.DefaultRefreshPeriod.Seconds(),
		}
	}
	g := GlobalProgress{Epoch: local.Epoch, TargetBatchSize: target}
	var live []*LocalProgress
	for _, r := range reports {
		if r == nil {
			continue
		}
		live = append(live, r)
		if r.ClientMode {
			g.NumClients++
		} else {
			g.Epoch = max(g.Epoch, r.Epoch)
		}
	}
	g.NumPeers = len(live)

	estimated, totalSPS := 0.0, emaEpsilon
	for _, r := range live {
		totalSPS += r.SamplesPerSecond
		if r.Epoch == g.Epoch {
			g.SamplesAccumulated += r.SamplesAccumulated
			estimated += float64(r.SamplesAccumulated) + math.Max(0, now-r.Time)*r.SamplesPerSecond
		}
		// hivemind counts only the peers at the global epoch for samples, but all peers for
		// performance: outdated peers will synchronize and begin contributing shortly.
	}
	untilEpoch := math.Max(0, float64(target)-estimated) / totalSPS
	peers := float64(g.NumPeers)
	maxPeers := math.Max(peers+p.ExpectedDriftPeers, peers*(1+p.ExpectedDriftRate))
	untilFetch := clip(untilEpoch*peers/maxPeers, p.MinRefreshPeriod.Seconds(), p.MaxRefreshPeriod.Seconds())
	g.ETA = now + untilEpoch
	g.NextFetch = now + untilFetch
	return g
}

// clip is numpy's clip for scalars: min(max(x, lo), hi).
func clip(x, lo, hi float64) float64 { return math.Min(math.Max(x, lo), hi) }

// Reason says why a peer may move to the next epoch.
type Reason int

// The reasons of ReadyToUpdateEpoch, in the order hivemind checks them.
const (
	// NotReady: none of the conditions holds.
	NotReady Reason = iota
	// GlobalEpochAhead: another peer is already at a later epoch.
	GlobalEpochAhead
	// TargetReached: the collaboration accumulated TargetBatchSize samples.
	TargetReached
	// ETAPassed: the estimated time of the next epoch has come.
	ETAPassed
)

func (r Reason) String() string {
	switch r {
	case NotReady:
		return "not ready"
	case GlobalEpochAhead:
		return "global epoch ahead"
	case TargetReached:
		return "target batch size reached"
	case ETAPassed:
		return "eta passed"
	default:
		return "Reason(?)"
	}
}

// ReadyToUpdateEpoch is hivemind's ready_to_update_epoch: a peer at localEpoch may increment its
// epoch at DHT time now when the global epoch is ahead of it, or the collaboration accumulated the
// target batch size, or the estimated time of the next epoch has passed.
func (g GlobalProgress) ReadyToUpdateEpoch(localEpoch int64, now float64) (bool, Reason) {
	switch {
	case g.Epoch > localEpoch:
		return true, GlobalEpochAhead
	case g.SamplesAccumulated >= g.TargetBatchSize:
		return true, TargetReached
	case now >= g.ETA:
		return true, ETAPassed
	}
	return false, NotReady
}

// performanceEMA is hivemind's PerformanceEMA (samples per second as a bias-corrected exponential
// moving average of seconds per sample). Times are passed in (seconds on any monotonic scale), so it
// does no I/O; it is not safe for concurrent use.
type performanceEMA struct {
	alpha               float64
	numUpdates          int
	emaSecondsPerSample float64
	samplesPerSecond    float64
	timestamp           float64
}

func newPerformanceEMA(alpha, now float64) *performanceEMA {
	return &performanceEMA{alpha: alpha, samplesPerSecond: emaEpsilon, timestamp: now}
}

// update registers taskSize (> 0) samples processed since the previous update or reset, at now.
func (e *performanceEMA) update(taskSize int64, now float64) float64 {
	interval := now - e.timestamp
	e.timestamp = now
	e.emaSecondsPerSample = e.alpha*interval/float64(taskSize) + (1-e.alpha)*e.emaSecondsPerSample
	e.numUpdates++
	adjusted := e.emaSecondsPerSample / (1 - math.Pow(1-e.alpha, float64(e.numUpdates)))
	e.samplesPerSecond = 1 / math.Max(adjusted, emaEpsilon)
	return e.samplesPerSecond
}

// resetTimer makes the next update count time from now.
func (e *performanceEMA) resetTimer(now float64) { e.timestamp = now }
