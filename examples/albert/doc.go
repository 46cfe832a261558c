// Package albert is hivemind's examples/albert on hivemind-go: trainers that coordinate a
// collaborative run through the DHT and a monitor that aggregates their progress
// (spec/hivemind-dht.md §9.2, §9.3). There is no model here: a Trainer runs a deterministic fake
// workload (samples accumulate at a configured rate, the loss is a synthetic decreasing curve), but
// everything that goes through the DHT is what hivemind's peers store and read, byte for byte:
//
//   - "<run_id>_metrics": one signed LocalMetrics per trainer, under the trainer's owner-marker
//     subkey, expiring StatisticsExpiration after it was stored (albert's CollaborativeCallback);
//   - "<run_id>_progress": one signed LocalProgress per peer (or a None tombstone once it stopped),
//     written and read by a Tracker (hivemind's ProgressTracker).
//
// Both keys are protected by hivemind's validators, configured in each peer's DHT worker:
// validator.AlbertMetricsSchema and validator.ProgressSchema, merged, plus an RSASignature whose key
// the parent creates (StartNode), so the parent knows the owner marker its worker signs for.
//
// # Usage protocol
//
//	node, err := albert.StartNode(ctx, albert.NodeConfig{RunID: "albert", InitialPeers: peers})
//	defer node.Stop(context.Background())
//	tr, err := albert.NewTrainer(node, node.Identity(), albert.TrainerConfig{RunID: "albert"})
//	err = tr.Run(ctx) // trains until ctx ends, then leaves a progress tombstone
//
// and, in the monitor's process:
//
//	m, err := albert.NewMonitor(node, albert.MonitorConfig{RunID: "albert"})
//	err = m.Serve(ctx) // logs "Step #<n>\tloss = <x>" whenever the latest step changes
//
// Every binary that starts nodes must call the worker package's Main first thing in main: a node's
// DHT worker is the same executable, re-executed (see ipc).
//
// The pure parts — ComputeGlobalProgress, GlobalProgress.ReadyToUpdateEpoch, Aggregate, the record
// codecs and the performance EMA — do no I/O and take the time as an argument. Tracker, Trainer and
// Monitor are the stateful parts; they talk to the DHT only through dht.Client.
package albert
