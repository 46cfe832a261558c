package albert

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/dht"
)

// Defaults of TrainerConfig.
const (
	// DefaultBatchSize is the number of samples of one fake mini-step.
	DefaultBatchSize = 32
	// DefaultSamplesPerSecond is the fake workload's nominal throughput.
	DefaultSamplesPerSecond = 256.0
	// DefaultStatisticsExpiration is albert's statistics_expiration: how long a trainer's metrics live.
	DefaultStatisticsExpiration = 600 * time.Second
	// DefaultPublishTimeout bounds one metrics store.
	DefaultPublishTimeout = 10 * time.Second
)

// TrainerConfig configures a Trainer. Zero fields take the defaults.
type TrainerConfig struct {
	// RunID names the run: the metrics go to "<RunID>_metrics", the progress to "<RunID>_progress".
	// Default DefaultRunID. It overrides Tracker.RunID.
	RunID string
	// BatchSize is the number of samples one fake mini-step processes.
	BatchSize int64
	// SamplesPerSecond is the fake workload's nominal rate: a mini-step takes BatchSize /
	// SamplesPerSecond seconds (the measured rate, which is what peers see, can only be lower).
	SamplesPerSecond float64
	// StatisticsExpiration is how long the metrics a trainer stores live (albert: 600 s).
	StatisticsExpiration time.Duration
	// PublishTimeout bounds one metrics store.
	PublishTimeout time.Duration
	// Seed makes the synthetic loss curve of this trainer; 0 derives it from the owner marker (albert
	// seeds its data shuffling from the public key).
	Seed uint64
	// Tracker configures the progress tracker (target batch size, refresh periods, ...).
	Tracker TrackerConfig
	// Logger receives the trainer's logs. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every bad field (errors wrap ErrInvalidConfig).
func (c TrainerConfig) Validate() error {
	var errs configErrors
	if c.BatchSize < 0 {
		errs.bad("BatchSize", "negative (%d)", c.BatchSize)
	}
	if s := c.SamplesPerSecond; s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		errs.bad("SamplesPerSecond", "must be a finite number > 0 (0: default), got %v", s)
	}
	errs.negative("StatisticsExpiration", c.StatisticsExpiration)
	errs.negative("PublishTimeout", c.PublishTimeout)
	return errors.Join(errs.err(), c.Tracker.Validate())
}

func (c TrainerConfig) withDefaults(id Identity) TrainerConfig {
	if c.RunID == "" {
		c.RunID = DefaultRunID
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.SamplesPerSecond == 0 {
		c.SamplesPerSecond = DefaultSamplesPerSecond
	}
	if c.StatisticsExpiration == 0 {
		c.StatisticsExpiration = DefaultStatisticsExpiration
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Seed == 0 {
		h := fnv.New64a()
		h.Write(id.OwnerMarker)
		c.Seed = h.Sum64()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Tracker.RunID = c.RunID
	if c.Tracker.Logger == nil {
		c.Tracker.Logger = c.Logger
	}
	return c
}

// EpochRecord is one epoch a trainer left.
type EpochRecord struct {
	// Epoch is the epoch left; Next the one entered.
	Epoch, Next int64
	// Samples is what this trainer contributed to Epoch.
	Samples int64
	// Reason is why it left (Tracker.ReadyToUpdateEpoch).
	Reason Reason
	// Global is the tracker's estimate at that moment.
	Global GlobalProgress
}

// TrainerStatus is a snapshot of a trainer.
type TrainerStatus struct {
	// Epoch is the trainer's local epoch.
	Epoch int64
	// MiniSteps and Samples (MiniSteps × BatchSize) count everything the trainer processed.
	MiniSteps int64
	Samples   int64
	// LastPublished is the last LocalMetrics a replica accepted; Published counts them.
	LastPublished *LocalMetrics
	Published     int
	// History lists the epochs left, oldest first.
	History []EpochRecord
}

// Trainer is a collaborative trainer with a fake workload: every mini-step it "processes"
// BatchSize samples with a synthetic loss, reports its progress to its Tracker, moves to the next
// epoch when the tracker says the collaboration is ready (hivemind.Optimizer.step), and, whenever its
// epoch changed, stores its LocalMetrics under "<run_id>_metrics" (albert's CollaborativeCallback).
//
// Contract: Run is called once; Status is safe for concurrent use at any time.
type Trainer struct {
	cfg     TrainerConfig
	client  dht.Client
	id      Identity
	tracker *Tracker

	mu     sync.Mutex
	status TrainerStatus
}

// NewTrainer returns a trainer storing through client as the peer id. It does no I/O.
func NewTrainer(client dht.Client, id Identity, cfg TrainerConfig) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(id)
	tr, err := NewTracker(client, id, cfg.Tracker)
	if err != nil {
		return nil, err
	}
	return &Trainer{cfg: cfg, client: client, id: id, tracker: tr}, nil
}

// Tracker returns the trainer's progress tracker.
func (t *Trainer) Tracker() *Tracker { return t.tracker }

// Status returns a snapshot of the trainer.
func (t *Trainer) Status() TrainerStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.status
	s.Samples = s.MiniSteps * t.cfg.BatchSize
	s.History = append([]EpochRecord(nil), s.History...)
	if s.LastPublished != nil {
		m := *s.LastPublished
		s.LastPublished = &m
	}
	return s
}

// SyntheticLoss is the fake workload's loss of the n-th mini-step of a trainer seeded with seed, at
// the collaboration's epoch: a curve that decreases with the epoch (the collaboration learns
// together), slightly with n, plus a small deterministic per-step jitter.
func SyntheticLoss(seed uint64, epoch, n int64) float64 {
	curve := 1.5 + 9.5*math.Exp(-float64(epoch)/6) + 0.5*math.Exp(-float64(n)/400)
	jitter := float64(splitmix64(seed^uint64(n))>>11)/float64(1<<53) - 0.5 // [-0.5, 0.5)
	return curve + 0.1*jitter
}

// splitmix64 is a stateless 64-bit mixer (SplitMix64's output function).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Run trains until ctx ends: the tracker serves alongside, and once training stops the tracker
// leaves its tombstone. It returns nil after an orderly stop, or the tracker's failure.
func (t *Trainer) Run(ctx context.Context) error {
	tctx, stopTracker := context.WithCancel(ctx)
	trackerDone := make(chan error, 1)
	go func() { trackerDone <- t.tracker.Serve(tctx) }()
	t.cfg.Logger.Info("training", "run_id", t.cfg.RunID, "batch_size", t.cfg.BatchSize,
		"samples_per_second", t.cfg.SamplesPerSecond, "target_batch_size", t.tracker.Config().Progress.TargetBatchSize)

	t.train(ctx)
	stopTracker()
	return <-trackerDone
}

// train is the training loop (one goroutine owns the loop's state).
func (t *Trainer) train(ctx context.Context) {
	step := seconds(float64(t.cfg.BatchSize) / t.cfg.SamplesPerSecond)
	var (
		epoch, samples   int64 // local epoch and samples accumulated in it
		miniSteps        int64
		lossSum          float64 // since the last metrics report
		lossSteps        int64
		lastReportedStep int64 = -1
		contributed      int64 // to the epoch most recently left
	)
	timer := time.NewTimer(step)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		timer.Reset(step)

		// The "optimizer step": process a batch, report it, move on when the collaboration is ready.
		loss := SyntheticLoss(t.cfg.Seed, max(epoch, t.tracker.GlobalProgress().Epoch), miniSteps)
		miniSteps++
		samples += t.cfg.BatchSize
		t.tracker.ReportLocalProgress(epoch, samples)
		if ready, reason := t.tracker.ReadyToUpdateEpoch(); ready {
			global := t.tracker.GlobalProgress()
			// A peer more than one epoch behind loads the state from its peers in hivemind; here it
			// simply jumps to the global epoch.
			next := max(epoch+1, global.Epoch)
			t.record(EpochRecord{Epoch: epoch, Next: next, Samples: samples, Reason: reason, Global: global})
			t.cfg.Logger.Debug("next epoch", "epoch", next, "reason", reason.String(),
				"contributed", samples, "global_samples", global.SamplesAccumulated)
			contributed = samples
			epoch, samples = t.tracker.UpdateEpoch(next), 0
		}

		// The callback at the end of the step (albert's CollaborativeCallback.on_step_end).
		lossSum += loss
		lossSteps++
		t.mu.Lock()
		t.status.Epoch, t.status.MiniSteps = epoch, miniSteps
		t.mu.Unlock()
		if epoch == lastReportedStep {
			continue
		}
		lastReportedStep = epoch
		m := LocalMetrics{
			Step:               epoch,
			SamplesPerSecond:   t.tracker.LocalProgress().SamplesPerSecond,
			SamplesAccumulated: contributed,
			Loss:               lossSum,
			MiniSteps:          lossSteps,
		}
		lossSum, lossSteps = 0, 0
		t.cfg.Logger.Info(fmt.Sprintf("Step #%d", epoch), "contributed", contributed,
			"samples_per_second", math.Round(m.SamplesPerSecond*1000)/1000,
			"local_loss", math.Round(m.Loss/float64(m.MiniSteps)*1e5)/1e5)
		if t.tracker.IsSynchronized() {
			t.publish(ctx, m)
		}
	}
}

func (t *Trainer) record(r EpochRecord) {
	t.mu.Lock()
	t.status.History = append(t.status.History, r)
	t.mu.Unlock()
}

// publish stores m under "<run_id>_metrics" with this peer's owner marker as the subkey; the
// worker's RSA validator signs it. A store in flight when ctx ends is completed (bounded by
// PublishTimeout), so LastPublished is exactly what the DHT holds.
func (t *Trainer) publish(ctx context.Context, m LocalMetrics) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.PublishTimeout)
	defer cancel()
	expiration := t.tracker.Config().Clock.Now() + t.cfg.StatisticsExpiration.Seconds()
	if err := storeOwn(pctx, t.client, MetricsKey(t.cfg.RunID), t.id, m.Value(), expiration); err != nil {
		t.cfg.Logger.Warn("cannot publish metrics", "step", m.Step, "error", err)
		return
	}
	t.mu.Lock()
	t.status.LastPublished = &m
	t.status.Published++
	t.mu.Unlock()
}
