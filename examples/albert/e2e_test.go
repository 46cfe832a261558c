package albert

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
)

// e2eTimeout bounds the whole end-to-end run (target: well under a minute with -race on 2 cores).
const e2eTimeout = 90 * time.Second

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelError
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// eventually polls cond every 50 ms until it holds, failing the test with cond's last explanation
// when ctx ends first.
func eventually(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %s", what, why)
		case <-tick.C:
		}
	}
}

// startNodes starts the named nodes concurrently (each a real DHT worker process: this test binary
// re-executed) and stops them at the end of the test.
func startNodes(ctx context.Context, t *testing.T, cfg NodeConfig, names ...string) []*Node {
	t.Helper()
	nodes := make([]*Node, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		c := cfg
		c.Name = name
		wg.Go(func() { nodes[i], errs[i] = StartNode(ctx, c) })
	}
	wg.Wait()
	t.Cleanup(func() { // concurrently: each stop sequence takes about a second
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, n := range nodes {
			if n != nil {
				wg.Go(func() { n.Stop(sctx) })
			}
		}
		wg.Wait()
	})
	for i, err := range errs {
		require.NoError(t, err, "starting %s", names[i])
	}
	return nodes
}

// TestRunOnRealWorkers is albert on real processes over loopback libp2p: a monitor (the first peer),
// three trainers and mallory, each with its own DHT worker configured with the run's validators.
//
// It proves that the trainers advance their epochs together as the collaboration reaches the target
// batch size; that the monitor sees all three trainers and its aggregate equals the sum of what they
// last published; that records forged under a trainer's owner marker (unsigned by mallory's node, or
// signed by mallory's key next to the trainer's marker) are rejected by every replica while mallory's
// own records are accepted; and that every tracker leaves a tombstone when its trainer stops.
func TestRunOnRealWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five worker processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	logger := testLogger(t)

	monitorNode := startNodes(ctx, t, NodeConfig{Logger: logger}, "monitor")[0]
	peers := startNodes(ctx, t, NodeConfig{Logger: logger, InitialPeers: monitorNode.Maddrs()},
		"trainer-0", "trainer-1", "trainer-2", "mallory")
	nodes, mallory := peers[:3], peers[3]

	monitor, err := NewMonitor(monitorNode, MonitorConfig{RefreshPeriod: 200 * time.Millisecond, Logger: logger.With("peer", "monitor")})
	require.NoError(t, err)
	mctx, stopMonitor := context.WithCancel(ctx)
	monitorDone := make(chan error, 1)
	go func() { monitorDone <- monitor.Serve(mctx) }()
	defer func() {
		stopMonitor()
		require.NoError(t, <-monitorDone)
	}()

	trainers := make([]*Trainer, len(nodes))
	for i, n := range nodes {
		cfg := demoTrainerConfig(i)
		cfg.Tracker.Progress = ProgressParams{
			TargetBatchSize:      960,
			MinRefreshPeriod:     100 * time.Millisecond,
			MaxRefreshPeriod:     time.Second,
			DefaultRefreshPeriod: 300 * time.Millisecond,
		}
		cfg.Tracker.MetadataExpiration = 10 * time.Second
		cfg.Logger = logger.With("peer", fmt.Sprintf("trainer-%d", i))
		trainers[i], err = NewTrainer(n, n.Identity(), cfg)
		require.NoError(t, err)
	}
	tctx, stopTrainers := context.WithCancel(ctx)
	defer stopTrainers()
	var wg sync.WaitGroup
	runErrs := make([]error, len(trainers))
	for i, tr := range trainers {
		wg.Go(func() { runErrs[i] = tr.Run(tctx) })
	}

	// The collaboration advances and the monitor sees every trainer.
	const epochs = 3
	eventually(ctx, t, "three epochs and three peers", func() (bool, string) {
		var reached []int64
		for _, tr := range trainers {
			reached = append(reached, tr.Status().Epoch)
		}
		s, _ := monitor.Latest()
		return slices.Min(reached) >= epochs && s.AlivePeers == len(trainers),
			fmt.Sprintf("epochs %v, monitor sees %d peers", reached, s.AlivePeers)
	})

	// Forgeries under trainer-0's marker are rejected; mallory's own records are not.
	victim := nodes[0].OwnerMarker()
	forged := LocalMetrics{Step: 999, SamplesPerSecond: 1e6, SamplesAccumulated: 1 << 40, Loss: 0, MiniSteps: 1}
	for name, subkey := range map[string][]byte{
		"unsigned under the victim's marker":        victim,
		"signed by mallory next to victim's marker": append(append([]byte{}, victim...), mallory.OwnerMarker()...),
	} {
		res, err := mallory.Store(ctx, dht.StoreItem{Key: MetricsKey(DefaultRunID), Subkey: subkey,
			Value: forged.Value(), Expiration: dht.SystemClock{}.Now() + 600})
		require.NoError(t, err, name)
		require.False(t, res.Stored, "%s: accepted by %+v", name, res.Replicas)
	}
	res, err := mallory.Store(ctx, dht.StoreItem{Key: MetricsKey("mallory"), Subkey: mallory.OwnerMarker(),
		Value: forged.Value(), Expiration: dht.SystemClock{}.Now() + 600})
	require.NoError(t, err)
	require.True(t, res.Stored, "mallory's own record in her own run")

	stopTrainers()
	wg.Wait()
	for i, err := range runErrs {
		require.NoError(t, err, "trainer %d", i)
	}

	// The monitor's aggregate is the sum of what the trainers last published.
	var published []PeerMetrics
	statuses := make([]TrainerStatus, len(trainers))
	for i, tr := range trainers {
		statuses[i] = tr.Status()
		require.NotNil(t, statuses[i].LastPublished)
		published = append(published, PeerMetrics{Subkey: nodes[i].OwnerMarker(), Metrics: *statuses[i].LastPublished})
	}
	want := Aggregate(published)
	var got Summary
	eventually(ctx, t, "the monitor to see the final metrics", func() (bool, string) {
		got, _ = monitor.Latest()
		return sameEntries(got.Peers, want.Peers), fmt.Sprintf("monitor %+v, trainers %+v", got.Peers, want.Peers)
	})
	require.Equal(t, 3, got.AlivePeers)
	require.Equal(t, want.Step, got.Step)
	require.Equal(t, want.Samples, got.Samples)
	require.InDelta(t, want.Performance, got.Performance, 1e-9)
	require.InDelta(t, want.Loss, got.Loss, 1e-12)
	require.Zero(t, got.Skipped)
	require.Less(t, got.Step, int64(999), "the forged step never shows")

	// Epochs: every trainer reached the goal, within one epoch of each other, and no epoch was left
	// before the collaboration had (nearly) accumulated the target batch size.
	var reached []int64
	for _, s := range statuses {
		reached = append(reached, s.Epoch)
	}
	require.LessOrEqual(t, slices.Max(reached)-slices.Min(reached), int64(1), "epochs %v", reached)
	cfg := trainers[0].cfg
	cfg.BatchSize *= 2 // slack: a mini-step in flight and a stalled store's worth of extrapolation per trainer
	checkEpochs(t, statuses, cfg, epochs)

	// Every tracker left a tombstone.
	gres, err := monitorNode.Get(ctx, ProgressKey(DefaultRunID), dht.GetOptions{Latest: true})
	require.NoError(t, err)
	require.NotNil(t, gres)
	require.Len(t, gres.Dictionary, len(trainers))
	for _, e := range gres.Dictionary {
		p, err := ParseLocalProgress(e.Value)
		require.NoError(t, err)
		require.Nil(t, p, "tombstone")
	}
}

// sameEntries compares subkeys and metrics (not expirations) of two ordered entry lists.
func sameEntries(a, b []PeerMetrics) bool {
	return slices.EqualFunc(a, b, func(x, y PeerMetrics) bool {
		return string(x.Subkey) == string(y.Subkey) && x.Metrics == y.Metrics
	})
}
