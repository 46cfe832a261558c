package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/examples/albert"
	"github.com/hivemind-go/hivemind/internal/cli"
)

// stopTimeout bounds the stop sequence of each node when a command ends.
const stopTimeout = 10 * time.Second

func stopNode(n *albert.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	n.Stop(ctx)
}

// printMaddrs tells the user how to join the node.
func printMaddrs(stdout io.Writer, n *albert.Node, runID string) {
	maddrs := n.Maddrs()
	fmt.Fprintf(stdout, "Peer %s is listening on:\n", n.ID())
	for _, m := range maddrs {
		fmt.Fprintf(stdout, "  %s\n", m)
	}
	if len(maddrs) > 0 {
		fmt.Fprintf(stdout, "Join this run with:\n  albert trainer --run-id %s --initial-peers %s\n", runID, maddrs[0])
	}
}

// withDuration ends ctx after d (--duration); 0 means never.
func withDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

const monitorAbout = `The training monitor (albert's run_training_monitor.py): starts a DHT node with the run's
validators, prints its multiaddrs, and every --refresh-period reads <run-id>_metrics with latest=True;
when the latest step changes it logs "Step #<n>  loss = <x>" with alive peers, samples and performance.
With --http it serves a dashboard: the step, the loss curve, samples per second, the trainers (Go or
Python) with their last report, and the ETA of the next epoch.`

func runMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("monitor", monitorAbout, stderr)
	var common commonFlags
	common.register(fs)
	refresh := cli.PositiveDuration(fs, "refresh-period", albert.DefaultMonitorRefresh, "time between two reads of the metrics")
	httpAddr := httpFlag(fs)
	target := fs.Int64("target-batch-size", albert.DefaultTargetBatchSize, "the run's samples per epoch (the trainers'), for the dashboard's ETA")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if *target <= 0 {
		return cli.Usagef("--target-batch-size must be positive")
	}
	logger, workerLogger := common.loggers(stderr)
	node, err := albert.StartNode(ctx, common.nodeConfig("monitor", workerLogger))
	if err != nil {
		return err
	}
	defer stopNode(node)
	printMaddrs(stdout, node, common.runID)
	m, err := albert.NewMonitor(node, albert.MonitorConfig{RunID: common.runID, RefreshPeriod: *refresh, TargetBatchSize: *target, Logger: logger})
	if err != nil {
		return err
	}
	stop, err := serveDashboard(*httpAddr, m, stdout, logger)
	if err != nil {
		return err
	}
	defer stop()
	return m.Serve(ctx)
}

const trainerAbout = `One trainer with a fake workload: every mini-step it processes --batch-size samples at
--samples-per-second, reports its progress under <run-id>_progress, moves to the next epoch when the
collaboration accumulated --target-batch-size samples (or its ETA passed, or a peer is ahead), and
stores its metrics under <run-id>_metrics whenever its epoch changes. Runs until Ctrl-C (or --duration).`

func runTrainer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("trainer", trainerAbout, stderr)
	var common commonFlags
	var tf trainerFlags
	common.register(fs)
	tf.register(fs, albertTrainerDefaults)
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := tf.validate(); err != nil {
		return err
	}
	logger, workerLogger := common.loggers(stderr)
	node, err := albert.StartNode(ctx, common.nodeConfig("trainer", workerLogger))
	if err != nil {
		return err
	}
	defer stopNode(node)
	printMaddrs(stdout, node, common.runID)
	tr, err := albert.NewTrainer(node, node.Identity(), tf.config(common.runID, logger))
	if err != nil {
		return err
	}
	ctx, cancel := withDuration(ctx, *duration)
	defer cancel()
	err = tr.Run(ctx)
	s := tr.Status()
	fmt.Fprintf(stdout, "Trained %d mini-steps (%d samples), reached epoch %d\n", s.MiniSteps, s.Samples, s.Epoch)
	return err
}

const demoAbout = `A whole run on loopback in one go: a monitor (the first peer) and --trainers trainers, each with
its own DHT worker process, joined through the monitor's address. Trainer i runs at
--samples-per-second × (1 + i/4). Watch the monitor's "Step #<n>  loss = <x>" lines; stop with Ctrl-C
(or --duration): trainers leave their progress tombstones and a final summary is printed. --http serves
the monitor's dashboard.`

// demoTrainerDefaults make epochs of a few seconds.
var demoTrainerDefaults = trainerDefaults{
	batchSize: 16, target: 1024, samplesPerSecond: 128,
	minRefresh: 250 * time.Millisecond, maxRefresh: 5 * time.Second, defaultRefresh: time.Second,
	metadataExpiration: 30 * time.Second, statisticsExpiration: albert.DefaultStatisticsExpiration,
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", demoAbout, stderr)
	var common commonFlags
	var tf trainerFlags
	common.register(fs)
	tf.register(fs, demoTrainerDefaults)
	trainers := fs.Int("trainers", 3, "number of trainers")
	refresh := cli.PositiveDuration(fs, "refresh-period", time.Second, "the monitor's time between two reads of the metrics")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	httpAddr := httpFlag(fs)
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	if err := tf.validate(); err != nil {
		return err
	}
	switch {
	case *trainers < 1:
		return cli.Usagef("--trainers must be at least 1")
	case common.keyFile != "" || common.identityPath != "":
		return cli.Usagef("demo peers use temporary keys and identities: drop --key-file and --identity-path")
	}
	ctx, cancel := withDuration(ctx, *duration)
	defer cancel()
	logger, workerLogger := common.loggers(stderr)

	monitorNode, err := albert.StartNode(ctx, common.nodeConfig("monitor", workerLogger))
	if err != nil {
		return err
	}
	defer stopNode(monitorNode)
	printMaddrs(stdout, monitorNode, common.runID)
	monitor, err := albert.NewMonitor(monitorNode, albert.MonitorConfig{
		RunID: common.runID, RefreshPeriod: *refresh, TargetBatchSize: tf.targetBatchSize,
		Logger: logger.With("peer", "monitor"),
	})
	if err != nil {
		return err
	}
	stop, err := serveDashboard(*httpAddr, monitor, stdout, logger)
	if err != nil {
		return err
	}
	defer stop()

	nodeCfg := common.nodeConfig("", workerLogger)
	nodeCfg.InitialPeers = append(nodeCfg.InitialPeers, monitorNode.Maddrs()...)
	nodes, err := startNodes(ctx, nodeCfg, *trainers)
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { stopNode(n) })
		}
		wg.Wait()
	}()
	if err != nil {
		return err
	}
	var list []*albert.Trainer
	for i, n := range nodes {
		cfg := tf.config(common.runID, logger.With("peer", fmt.Sprintf("trainer-%d", i)))
		cfg.SamplesPerSecond *= 1 + float64(i)/4
		tr, err := albert.NewTrainer(n, n.Identity(), cfg)
		if err != nil {
			return err
		}
		list = append(list, tr)
	}

	var wg sync.WaitGroup
	errs := make([]error, len(list)+1)
	wg.Go(func() { errs[len(list)] = monitor.Serve(ctx) })
	for i, tr := range list {
		wg.Go(func() { errs[i] = tr.Run(ctx) })
	}
	wg.Wait()
	printSummary(stdout, monitor, list)
	return errors.Join(errs...)
}

// startNodes starts n trainer nodes concurrently; on failure the ones started are returned too, for
// the caller to stop.
func startNodes(ctx context.Context, cfg albert.NodeConfig, n int) ([]*albert.Node, error) {
	nodes := make([]*albert.Node, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		c := cfg
		c.Name = fmt.Sprintf("trainer-%d", i)
		wg.Go(func() { nodes[i], errs[i] = albert.StartNode(ctx, c) })
	}
	wg.Wait()
	var started []*albert.Node
	for _, node := range nodes {
		if node != nil {
			started = append(started, node)
		}
	}
	return started, errors.Join(errs...)
}

// printSummary prints what each trainer did and what the monitor saw last.
func printSummary(stdout io.Writer, monitor *albert.Monitor, trainers []*albert.Trainer) {
	fmt.Fprintln(stdout, "\nTrainers:")
	for i, tr := range trainers {
		s := tr.Status()
		var reasons []string
		for _, h := range s.History {
			reasons = append(reasons, fmt.Sprintf("%d→%d (%s)", h.Epoch, h.Next, h.Reason))
		}
		fmt.Fprintf(stdout, "  trainer-%d: epoch %d, %d samples in %d mini-steps, %d metrics records\n",
			i, s.Epoch, s.Samples, s.MiniSteps, s.Published)
		if len(reasons) > 0 {
			fmt.Fprintf(stdout, "    epochs: %s\n", strings.Join(reasons, ", "))
		}
	}
	if s, ok := monitor.Latest(); ok {
		fmt.Fprintf(stdout, "Monitor: step %d, %d alive peers, loss %.5f, %d samples, %.1f samples/s\n",
			s.Step, s.AlivePeers, s.Loss, s.Samples, math.Round(s.Performance*10)/10)
	}
}
