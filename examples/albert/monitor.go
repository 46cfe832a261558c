package albert

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Defaults of MonitorConfig.
const (
	// DefaultMonitorRefresh is albert's refresh_period: the monitor reads the metrics this often.
	DefaultMonitorRefresh = 30 * time.Second
	// DefaultMonitorRPCTimeout bounds one read.
	DefaultMonitorRPCTimeout = 30 * time.Second
)

// PeerMetrics is one trainer's entry under "<run_id>_metrics".
type PeerMetrics struct {
	// Subkey is the entry's subkey: the trainer's owner marker.
	Subkey []byte
	// Metrics is what the trainer stored.
	Metrics LocalMetrics
	// Expiration is the entry's DHT expiration time.
	Expiration float64
}

// Summary aggregates the trainers' metrics like albert's run_training_monitor.py.
type Summary struct {
	// Step is the latest step any trainer reported.
	Step int64
	// AlivePeers counts the trainers with live metrics.
	AlivePeers int
	// Loss is Σ loss / Σ mini_steps: the mean mini-step loss; NaN when no mini-step was reported
	// (hivemind would divide by zero).
	Loss float64
	// Samples is Σ samples_accumulated.
	Samples int64
	// Performance is Σ samples_per_second.
	Performance float64
	// Peers are the entries aggregated, ordered by subkey.
	Peers []PeerMetrics
	// Skipped counts entries that were not valid LocalMetrics.
	Skipped int
}

// Aggregate computes the summary of the given entries (pure). With no entries the summary is
// empty, Loss NaN.
func Aggregate(peers []PeerMetrics) Summary {
	s := Summary{Peers: slices.Clone(peers), AlivePeers: len(peers)}
	slices.SortFunc(s.Peers, func(a, b PeerMetrics) int { return bytes.Compare(a.Subkey, b.Subkey) })
	var lossSum float64
	var miniSteps int64
	for i, p := range s.Peers {
		m := p.Metrics
		if i == 0 || m.Step > s.Step {
			s.Step = m.Step
		}
		lossSum += m.Loss
		miniSteps += m.MiniSteps
		s.Samples += m.SamplesAccumulated
		s.Performance += m.SamplesPerSecond
	}
	s.Loss = math.NaN()
	if miniSteps != 0 {
		s.Loss = lossSum / float64(miniSteps)
	}
	return s
}

// ParseMetrics decodes the value found under "<run_id>_metrics" into its entries. Entries whose
// subkey is not bytes or whose value is not a LocalMetrics are counted in skipped. A missing or
// non-dictionary value has no entries.
func ParseMetrics(res *dht.Result) (peers []PeerMetrics, skipped int) {
	if res == nil || !res.IsDictionary {
		return nil, 0
	}
	for _, e := range res.Dictionary {
		sub, err := msgpack.Unmarshal(e.Subkey)
		subkey, ok := sub.([]byte)
		if err != nil || !ok {
			skipped++
			continue
		}
		m, err := ParseLocalMetrics(e.Value)
		if err != nil {
			skipped++
			continue
		}
		peers = append(peers, PeerMetrics{Subkey: subkey, Metrics: m, Expiration: e.Expiration})
	}
	return peers, skipped
}

// MonitorConfig configures a Monitor. Zero fields take the defaults.
type MonitorConfig struct {
	// RunID names the run (the key read is "<RunID>_metrics"). Default DefaultRunID.
	RunID string
	// RefreshPeriod is the time between two reads. Default DefaultMonitorRefresh.
	RefreshPeriod time.Duration
	// RPCTimeout bounds one read. Default DefaultMonitorRPCTimeout.
	RPCTimeout time.Duration
	// OnStep, when set, is called (from Serve's goroutine) with each summary whose step differs from
	// the previous one's, right after it is logged.
	OnStep func(Summary)
	// TargetBatchSize is the run's samples per epoch (the trainers' --target-batch-size), for the
	// dashboard's ETA to the next epoch. Default DefaultTargetBatchSize.
	TargetBatchSize int64
	// Clock gives DHT time (the dashboard's ages and ETA). Default dht.SystemClock.
	Clock dht.Clock
	// Logger receives "Step #<n>\tloss = <x>" lines and the rest. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every bad field (errors wrap ErrInvalidConfig).
func (c MonitorConfig) Validate() error {
	var errs configErrors
	errs.negative("RefreshPeriod", c.RefreshPeriod)
	errs.negative("RPCTimeout", c.RPCTimeout)
	if c.TargetBatchSize < 0 {
		errs.bad("TargetBatchSize", "negative (%d)", c.TargetBatchSize)
	}
	return errs.err()
}

// Monitor is albert's training monitor: every RefreshPeriod it reads "<run_id>_metrics" with
// latest=True, aggregates every trainer's metrics and, when the latest step changed, logs
// "Step #<n>\tloss = <x>" with the number of alive peers, samples and performance. For its
// dashboard (Dashboard, DashboardHandler) it also keeps each new step's figures, reads the run's
// progress reports ("<run_id>_progress") and, when client also reports its worker's peers (a
// Stats method like ipc.Client's: albert.Node has it), tells Go workers from hivemind (Python)
// peers by the agent version they announced.
//
// Contract: Serve is called once; Refresh, Latest and Dashboard are safe for concurrent use.
type Monitor struct {
	cfg    MonitorConfig
	client dht.Client
	key    dht.Key

	mu     sync.Mutex
	latest Summary // of the last read that found metrics (AlivePeers > 0); zero before
	board  board   // what the dashboard shows beyond latest
}

// NewMonitor returns a monitor reading through client. It does no I/O.
func NewMonitor(client dht.Client, cfg MonitorConfig) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: nil DHT client", ErrInvalidConfig)
	}
	if cfg.RunID == "" {
		cfg.RunID = DefaultRunID
	}
	if cfg.RefreshPeriod == 0 {
		cfg.RefreshPeriod = DefaultMonitorRefresh
	}
	if cfg.RPCTimeout == 0 {
		cfg.RPCTimeout = DefaultMonitorRPCTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TargetBatchSize == 0 {
		cfg.TargetBatchSize = DefaultTargetBatchSize
	}
	if cfg.Clock == nil {
		cfg.Clock = dht.SystemClock{}
	}
	return &Monitor{cfg: cfg, client: client, key: MetricsKey(cfg.RunID)}, nil
}

// Latest returns the summary of the last successful read, and whether there was one that found
// metrics.
func (m *Monitor) Latest() (Summary, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest, m.latest.AlivePeers > 0
}

// Refresh reads the metrics once and returns their summary; found is false when the key held no
// metrics. It does not log (Serve does).
func (m *Monitor) Refresh(ctx context.Context) (s Summary, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RPCTimeout)
	defer cancel()
	res, err := m.client.Get(ctx, m.key, dht.GetOptions{Latest: true})
	if err != nil {
		return Summary{}, false, fmt.Errorf("albert: read %s_metrics: %w", m.cfg.RunID, err)
	}
	peers, skipped := ParseMetrics(res)
	s = Aggregate(peers)
	s.Skipped = skipped
	found = len(peers) > 0
	if found {
		m.mu.Lock()
		m.latest = s
		m.mu.Unlock()
	}
	return s, found, nil
}

// Serve refreshes every RefreshPeriod until ctx ends, logging each new step; a failed read is
// logged and retried at the next period. It returns nil when ctx ends.
func (m *Monitor) Serve(ctx context.Context) error {
	ticker := time.NewTicker(m.cfg.RefreshPeriod)
	defer ticker.Stop()
	var lastStep int64 // the last step logged; 0 at start as in albert, so step 0 is never logged
	for {
		s, found, err := m.Refresh(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			m.cfg.Logger.Warn("cannot read metrics", "error", err)
		case found && s.Step != lastStep:
			lastStep = s.Step
			m.cfg.Logger.Info(fmt.Sprintf("Step #%d\tloss = %.5f", s.Step, s.Loss),
				"alive_peers", s.AlivePeers, "samples", s.Samples,
				"performance", math.Round(s.Performance*1000)/1000)
			if m.cfg.OnStep != nil {
				m.cfg.OnStep(s)
			}
		default:
			m.cfg.Logger.Debug("peer is still alive", "found", found)
		}
		if found {
			m.noteStep(s)
		}
		if err == nil {
			m.readProgress(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
