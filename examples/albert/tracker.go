package albert

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/dht"
)

// Defaults of TrackerConfig: albert's ProgressTrackerArguments (arguments.py), which override a
// few of ProgressTracker's own (max_refresh_period 10, metadata_expiration 60).
const (
	DefaultTargetBatchSize      = 4096
	DefaultMinRefreshPeriod     = 500 * time.Millisecond
	DefaultMaxRefreshPeriod     = 30 * time.Second
	DefaultDefaultRefresh       = 3 * time.Second
	DefaultExpectedDriftPeers   = 3.0
	DefaultExpectedDriftRate    = 0.2
	DefaultPerformanceEMAAlpha  = 0.1
	DefaultMetadataExpiration   = 120 * time.Second
	DefaultTrackerRPCTimeout    = 10 * time.Second
	defaultTrackerShutdownBound = 5 * time.Second
)

// TrackerConfig configures a Tracker. Zero fields take the defaults above.
type TrackerConfig struct {
	// RunID is the prefix of the progress key ("<RunID>_progress"). Default DefaultRunID.
	RunID string
	// Progress holds the target batch size and the refresh and drift parameters.
	Progress ProgressParams
	// ClientMode marks this peer's reports as a client's (they never raise the global epoch).
	ClientMode bool
	// PerformanceEMAAlpha smooths the samples-per-second estimate.
	PerformanceEMAAlpha float64
	// MetadataExpiration is how long a report lives in the DHT; a peer re-reports every half of it.
	MetadataExpiration time.Duration
	// RPCTimeout bounds each fetch (a report is bounded by MetadataExpiration, as in hivemind).
	RPCTimeout time.Duration
	// Clock gives DHT time. Default dht.SystemClock.
	Clock dht.Clock
	// Logger receives the tracker's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every bad field (errors wrap ErrInvalidConfig).
func (c TrackerConfig) Validate() error {
	var errs configErrors
	p := c.Progress
	if p.TargetBatchSize < 0 {
		errs.bad("Progress.TargetBatchSize", "negative (%d)", p.TargetBatchSize)
	}
	errs.negative("Progress.MinRefreshPeriod", p.MinRefreshPeriod)
	errs.negative("Progress.MaxRefreshPeriod", p.MaxRefreshPeriod)
	errs.negative("Progress.DefaultRefreshPeriod", p.DefaultRefreshPeriod)
	errs.negative("MetadataExpiration", c.MetadataExpiration)
	errs.negative("RPCTimeout", c.RPCTimeout)
	if p.MinRefreshPeriod > 0 && p.MaxRefreshPeriod > 0 && p.MinRefreshPeriod > p.MaxRefreshPeriod {
		errs.bad("Progress.MinRefreshPeriod", "%v exceeds MaxRefreshPeriod %v", p.MinRefreshPeriod, p.MaxRefreshPeriod)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{name: "Progress.ExpectedDriftPeers", v: p.ExpectedDriftPeers},
		{name: "Progress.ExpectedDriftRate", v: p.ExpectedDriftRate},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			errs.bad(f.name, "must be a finite number >= 0, got %v", f.v)
		}
	}
	if a := c.PerformanceEMAAlpha; a < 0 || a > 1 || math.IsNaN(a) {
		errs.bad("PerformanceEMAAlpha", "must be in [0, 1] (0: default), got %v", a)
	}
	return errs.err()
}

func (c TrackerConfig) withDefaults() TrackerConfig {
	if c.RunID == "" {
		c.RunID = DefaultRunID
	}
	p := &c.Progress
	if p.TargetBatchSize == 0 {
		p.TargetBatchSize = DefaultTargetBatchSize
	}
	if p.MinRefreshPeriod == 0 {
		p.MinRefreshPeriod = DefaultMinRefreshPeriod
		if p.MaxRefreshPeriod > 0 {
			p.MinRefreshPeriod = min(p.MinRefreshPeriod, p.MaxRefreshPeriod)
		}
	}
	if p.MaxRefreshPeriod == 0 {
		p.MaxRefreshPeriod = max(DefaultMaxRefreshPeriod, p.MinRefreshPeriod)
	}
	if p.DefaultRefreshPeriod == 0 {
		p.DefaultRefreshPeriod = DefaultDefaultRefresh
	}
	if p.ExpectedDriftPeers == 0 {
		p.ExpectedDriftPeers = DefaultExpectedDriftPeers
	}
	if p.ExpectedDriftRate == 0 {
		p.ExpectedDriftRate = DefaultExpectedDriftRate
	}
	if c.PerformanceEMAAlpha == 0 {
		c.PerformanceEMAAlpha = DefaultPerformanceEMAAlpha
	}
	if c.MetadataExpiration == 0 {
		c.MetadataExpiration = DefaultMetadataExpiration
	}
	if c.RPCTimeout == 0 {
		c.RPCTimeout = DefaultTrackerRPCTimeout
	}
	if c.Clock == nil {
		c.Clock = dht.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Identity is who a peer is in the records it stores.
type Identity struct {
	// PeerID is the raw libp2p peer ID of the peer's DHT worker (LocalProgress.PeerID).
	PeerID []byte
	// OwnerMarker is "[owner:ssh-rsa …]" of the RSA key the worker signs with: the subkey of every
	// record the peer stores.
	OwnerMarker []byte
}

// Tracker is hivemind's ProgressTracker: it reports this peer's progress under
// "<run_id>_progress" (subkey = the owner marker) and estimates the collaboration's progress from
// everybody's reports, so a trainer knows when to move to the next epoch.
//
// Contract: Serve runs the reporter and the fetcher until its ctx ends, then stores a None tombstone
// so other peers stop counting this one; it is called once. ReportLocalProgress, UpdateEpoch and the
// getters are safe for concurrent use, before, during and after Serve; they never block on the DHT.
type Tracker struct {
	cfg    TrackerConfig
	client dht.Client
	id     Identity
	key    dht.Key
	report chan struct{} // a pending "report now" signal (capacity 1)
	// lastExpiration is the expiration of the last report stored; written by the reporter only,
	// read by Serve after the reporter ended.
	lastExpiration float64

	mu     sync.Mutex // guards the fields below; held only around pure computations
	local  LocalProgress
	global GlobalProgress
	ema    *performanceEMA
}

// NewTracker returns a tracker for the peer id storing through client. It does no I/O: the first
// fetch happens when Serve starts. Until then the global progress is the local one, with an unknown
// ETA.
func NewTracker(client dht.Client, id Identity, cfg TrackerConfig) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: nil DHT client", ErrInvalidConfig)
	}
	if len(id.OwnerMarker) == 0 {
		return nil, fmt.Errorf("%w: Identity.OwnerMarker is empty", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	now := cfg.Clock.Now()
	t := &Tracker{
		cfg:    cfg,
		client: client,
		id:     Identity{PeerID: append([]byte{}, id.PeerID...), OwnerMarker: append([]byte{}, id.OwnerMarker...)},
		key:    ProgressKey(cfg.RunID),
		report: make(chan struct{}, 1),
		ema:    newPerformanceEMA(cfg.PerformanceEMAAlpha, now),
	}
	t.local = t.localProgressLocked(0, 0, now)
	t.global = GlobalProgress{TargetBatchSize: cfg.Progress.TargetBatchSize, ETA: math.Inf(1), NextFetch: now}
	return t, nil
}

// Config returns the tracker's configuration with defaults applied.
func (t *Tracker) Config() TrackerConfig { return t.cfg }

func (t *Tracker) localProgressLocked(epoch, samples int64, now float64) LocalProgress {
	return LocalProgress{
		PeerID:             t.id.PeerID,
		Epoch:              epoch,
		SamplesAccumulated: samples,
		SamplesPerSecond:   t.ema.samplesPerSecond,
		Time:               now,
		ClientMode:         t.cfg.ClientMode,
	}
}

// LocalProgress returns this peer's last reported progress.
func (t *Tracker) LocalProgress() LocalProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local
}

// GlobalProgress returns the current estimate of the collaboration's progress.
func (t *Tracker) GlobalProgress() GlobalProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.global
}

// ReadyToUpdateEpoch reports whether this peer may increment its epoch now, and why.
func (t *Tracker) ReadyToUpdateEpoch() (bool, Reason) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.global.ReadyToUpdateEpoch(t.local.Epoch, t.cfg.Clock.Now())
}

// IsSynchronized is hivemind's Optimizer.is_synchronized_with_peers: the local epoch is at most one
// behind the global one.
func (t *Tracker) IsSynchronized() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.local.Epoch >= t.global.Epoch-1
}

// ReportLocalProgress records that this peer accumulated samples in epoch, and asks the reporter to
// publish it. When this peer is at the global epoch the new samples are added to the global count
// at once (optimistically, until the next fetch).
func (t *Tracker) ReportLocalProgress(epoch, samples int64) {
	t.mu.Lock()
	t.reportLocked(epoch, samples)
	t.mu.Unlock()
	t.signalReport()
}

// reportLocked makes (epoch, samples) the local progress, counting the new samples in the global
// progress while this peer is at the global epoch; t.mu is held.
func (t *Tracker) reportLocked(epoch, samples int64) {
	now := t.cfg.Clock.Now()
	extra := samples - t.local.SamplesAccumulated
	if epoch == t.local.Epoch && t.local.Epoch == t.global.Epoch {
		t.global.SamplesAccumulated += extra // may decrease, e.g. after a reset
	}
	if extra > 0 {
		t.ema.update(extra, now)
	} else {
		t.ema.resetTimer(now) // progress was reset
	}
	t.local = t.localProgressLocked(epoch, samples, now)
}

func (t *Tracker) signalReport() {
	select {
	case t.report <- struct{}{}:
	default: // a report is already pending; it will carry the latest progress
	}
}

// UpdateEpoch moves this peer to newEpoch with no samples accumulated, and returns it. When newEpoch
// is ahead of the global epoch, the global epoch becomes newEpoch with no samples and an unknown ETA
// until the next fetch. (hivemind requires pause_updates around it; here every update holds the
// tracker's lock, so a concurrent fetch applies either before or after it.)
func (t *Tracker) UpdateEpoch(newEpoch int64) int64 {
	t.mu.Lock()
	if newEpoch > t.global.Epoch {
		t.global.Epoch = newEpoch
		t.global.SamplesAccumulated = 0
		t.global.ETA = math.Inf(1)
	}
	t.reportLocked(newEpoch, 0)
	t.mu.Unlock()
	t.signalReport()
	return newEpoch
}

// Serve runs the reporter and the fetcher until ctx ends — the fetcher reads the run's progress at
// once (hivemind does that first read in ProgressTracker's constructor, blocking it) — and finally
// stores a None tombstone under this peer's subkey, expiring MetadataExpiration later (and
// always after the last report, which it must replace). It returns nil after an orderly stop, or the
// tombstone's failure.
func (t *Tracker) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { t.reporter(ctx) })
	wg.Go(func() { t.fetcher(ctx) })
	wg.Wait()

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(t.cfg.MetadataExpiration, defaultTrackerShutdownBound))
	defer cancel()
	expiration := math.Max(t.cfg.Clock.Now()+t.cfg.MetadataExpiration.Seconds(), math.Nextafter(t.lastExpiration, math.Inf(1)))
	if err := storeOwn(sctx, t.client, t.key, t.id, nil, expiration); err != nil {
		return fmt.Errorf("albert: progress tombstone: %w", err)
	}
	t.cfg.Logger.Debug("no longer reporting progress", "run_id", t.cfg.RunID)
	return nil
}

// storeOwn stores value under key with id's owner marker as the subkey (the worker's RSA validator
// signs it). A store that no replica accepted is errNotStored.
func storeOwn(ctx context.Context, client dht.Client, key dht.Key, id Identity, value any, expiration float64) error {
	res, err := client.Store(ctx, dht.StoreItem{Key: key, Subkey: id.OwnerMarker, Value: value, Expiration: expiration})
	switch {
	case err != nil:
		return err
	case !res.Stored:
		return errNotStored
	}
	return nil
}

// sleep waits d, or until wake fires (a nil wake never does); it returns false when ctx ended first.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
	case <-timer.C:
	}
	return true
}

// reporter publishes the local progress whenever ReportLocalProgress asks, and at least every half
// MetadataExpiration. A peer that never accumulated samples in the last two epochs stops reporting
// (auxiliary peers are not counted).
func (t *Tracker) reporter(ctx context.Context) {
	lastReport := math.Inf(-1)
	lastReportEpoch := math.Inf(-1)
	half := t.cfg.MetadataExpiration.Seconds() / 2
	for {
		if !sleep(ctx, seconds(math.Max(0, lastReport-t.cfg.Clock.Now()+half)), t.report) {
			return
		}
		t.mu.Lock()
		local, globalEpoch := t.local, t.global.Epoch
		t.mu.Unlock()
		lastReport = t.cfg.Clock.Now()
		if local.SamplesAccumulated > 0 {
			lastReportEpoch = float64(globalEpoch)
		}
		if lastReportEpoch < float64(globalEpoch-1) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, t.cfg.MetadataExpiration)
		// Strictly later than the previous report, which it must replace even within one clock tick.
		expiration := math.Max(lastReport+t.cfg.MetadataExpiration.Seconds(), math.Nextafter(t.lastExpiration, math.Inf(1)))
		err := storeOwn(sctx, t.client, t.key, t.id, local.Value(), expiration)
		cancel()
		t.lastExpiration = math.Max(t.lastExpiration, expiration) // even on failure: a replica may have it
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			t.cfg.Logger.Warn("cannot report progress", "run_id", t.cfg.RunID, "error", err)
		}
	}
}

// fetcher reads the run's progress whenever the estimate says (GlobalProgress.NextFetch).
func (t *Tracker) fetcher(ctx context.Context) {
	for {
		t.mu.Lock()
		next := t.global.NextFetch
		t.mu.Unlock()
		if !sleep(ctx, seconds(math.Max(0, next-t.cfg.Clock.Now())), nil) {
			return
		}
		t.fetch(ctx)
	}
}

// fetch reads the run's progress once and recomputes the global progress from it. On failure the
// estimate is kept and the next fetch comes after DefaultRefreshPeriod.
func (t *Tracker) fetch(ctx context.Context) {
	fctx, cancel := context.WithTimeout(ctx, t.cfg.RPCTimeout)
	res, err := t.client.Get(fctx, t.key, dht.GetOptions{Latest: true})
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		t.cfg.Logger.Warn("cannot fetch progress", "run_id", t.cfg.RunID, "error", err)
		t.mu.Lock()
		t.global.NextFetch = t.cfg.Clock.Now() + t.cfg.Progress.DefaultRefreshPeriod.Seconds()
		t.mu.Unlock()
		return
	}
	reports, found := t.parseReports(res)
	t.mu.Lock()
	g := ComputeGlobalProgress(t.cfg.Progress, t.local, t.ema.samplesPerSecond, reports, found, t.cfg.Clock.Now())
	t.global = g
	t.mu.Unlock()
	t.cfg.Logger.Debug("collaboration progress", "run_id", t.cfg.RunID, "epoch", g.Epoch,
		"samples", g.SamplesAccumulated, "peers", g.NumPeers, "eta_in", g.ETA-t.cfg.Clock.Now(),
		"next_fetch_in", g.NextFetch-t.cfg.Clock.Now())
}

// parseReports decodes every subkey of a progress value; entries that are not valid reports are
// skipped (the validators of an honest node never let them in).
func (t *Tracker) parseReports(res *dht.Result) ([]*LocalProgress, bool) {
	if res == nil || !res.IsDictionary {
		return nil, false
	}
	reports := make([]*LocalProgress, 0, len(res.Dictionary))
	for _, e := range res.Dictionary {
		p, err := ParseLocalProgress(e.Value)
		if err != nil {
			t.cfg.Logger.Debug("skipping a progress entry", "run_id", t.cfg.RunID, "error", err)
			continue
		}
		reports = append(reports, p)
	}
	return reports, true
}

// seconds converts DHT seconds to a Duration, saturating instead of overflowing.
func seconds(s float64) time.Duration {
	const maxSeconds = float64(math.MaxInt64 / int64(time.Second))
	if s >= maxSeconds || math.IsNaN(s) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}
