// Package chaos injects faults into supervised swarms of real worker processes under continuous
// get/store load and measures what the reliability claims promise. Everything is in the tests; the
// subpackages are the worker binary (faultworker), its fault file (faults) and the reliability
// table's rows (report).
//
// # Harness
//
// TestMain builds two binaries once, without -race: faultworker (worker.MainWith with fault points)
// and cmd/supervisor. A swarm is an ipc.Pool in this process (run with -race in CI) whose workers are
// faultworker processes: the test sees the pool's status, events and worker pids, signals real
// processes, and writes fault files (<state dir>/faults.json) the workers read on every call. Every
// worker carries HIVEMIND_CHAOS_RUN=<run id> in its environment; after each swarm stops, /proc is
// scanned for processes still carrying it (orphans fail the test).
//
// The load: callers with their own seeded RNG make gets of acknowledged records and stores of new
// ones through random slots, each call with a deadline. Each outcome is classified: ok; failed with a
// typed error (errors.Is an ipc or dht sentinel); unclear (an error without one); hung (returned
// more than hangMargin after its deadline, or never). A store is acknowledged when Stored is true;
// acknowledged records are read back at the end through up to three slots: one none returns is lost.
//
// Every run is seeded: the seed is printed and HIVEMIND_CHAOS_SEED overrides it (the same seed picks
// the same slots and faults; process scheduling still varies). HIVEMIND_LONG=1 runs the long forms.
//
// # What each scenario proves (short form; long form in parentheses)
//
// Every scenario checks that no call hangs past its deadline, that every failed call carries a
// typed error, that the swarm returns to full health (the time is recorded), that no worker process
// is left behind, and that no acknowledged record is lost.
//
//   - kill-9, 5 kills (50): kill -9 of a random worker; in-flight calls fail with ErrWorkerGone or
//     ErrRestarting, the slot restarts with the same peer ID.
//   - kill-all, 1 (5): kill -9 of every worker at once: only the durable state survives, and every
//     acknowledged record is readable afterwards. The harness bootstraps a slot restarting while no
//     slot runs from the first slot once it runs (swarmConfig.PoolBootstrapOnly turns this off);
//     kill-all-pool-bootstrap is the same with ipc's BootstrapFromPool alone: the first slot to
//     restart goes alone, the others bootstrap from it (at most one worker may come up alone).
//   - sigstop, 2 (20): SIGSTOP of a random worker; a call to it ends at its deadline with
//     ErrDeadlineExceeded; resumed after 200 ms it keeps running, left stopped the health checks kill
//     and restart it.
//   - crash-loop-heals, 1 (5): a worker that exits at every start: typed start failures naming the
//     exit status, backoff, then recovery once the cause is gone.
//   - crash-loop-gives-up: the same until the restart intensity is exceeded: a *GaveUpError naming
//     the slot and its exits, calls to the slot fail with ErrGaveUp, the other slots keep serving.
//   - slow-worker, 2 (10): a worker whose handlers stall: calls end at their deadline with
//     ErrDeadlineExceeded, the health checks keep the worker (no restart), it serves when the stall ends.
//   - socket-closed, 2 (10): the worker's end of the parent connection is shut down (SIGUSR1) while a
//     Store and a Get are held in it: the Store fails at once with ErrWorkerGone, the Get (which ipc
//     retries once, unary, when its stream breaks) ends by its deadline, the client reconnects.
//   - state-dir-unusable, 4: the state directory replaced by a file, the identity file replaced by
//     garbage or by a directory, records.db replaced by garbage: starts fail typed and name the cause,
//     the damaged file is left as it was (never silently replaced), and after the repair the slot
//     comes back with its peer ID.
//   - durability-16x5 (TestDurabilityUnderKills), 16 kills (100): 16 workers, 5 replicas; workers are
//     killed one at a time and kept down while every record is read through the others, then
//     restarted and read again: 0 lost.
//   - supervisor-kill-9, 2 (10): the supervisor binary killed with SIGKILL: its workers are gone
//     within the bound (target 1 s, time printed), an outside client's calls end within their
//     deadline, a restarted supervisor brings the same peer IDs back, and every record the outside
//     client stored before the crash (held by the workers as replicas, in their durable state).
//   - partition-heal (TestPartitionHeals), 1 (5): net-fault workers split in two, records stored on
//     each side, healed: every record readable from the other side within the refresh period
//     (asserted with a factor of 5; the time is printed). Each side deletes the other's nodes from
//     its routing table while cut; the refresh re-contacts the initial peers missing from the table
//     and so re-links them (dht/refresh.go). sim/partition-heal is the same on dhtsim in virtual
//     time, 64 nodes, healed at a seeded point of the refresh cycle, and asserts the refresh period
//     itself (plus the RPC timeouts that follow the tick).
//   - link-faults: 200 ms added to every DHT RPC, then two workers whose DHT handlers stall past the
//     RPC timeout: gets and stores through the others still succeed.
//   - fresh-clients (TestFreshClients), 24 (200): issue 13's one-shot store: a fresh client-mode
//     node (new host) bootstraps from one in-process gateway node of a 4-worker swarm over a jittery
//     QUIC link, stores at once with 5 replicas and gets with Latest. The peers of its first rpc_find
//     answers (IDs without addresses) must be resolved while its host may still be admitting the
//     gateway to the kad DHT: a store that misses one of the 5 nodes nearest to its key (the
//     newcomer's own copy counts, so a node left over would hide a single miss in a count of
//     replicas), a get that misses and a record the workers cannot return count as lost.
//   - nat-relay (TestNATSwarm), 4 faults (20): 4 workers in network namespaces (test/netns), two
//     public and two each behind its own masquerading NAT, reachable through a public relay (the
//     bootstrap node) with --use-auto-relay: kill -9 and partitions (the worker's namespace drops
//     every packet for 3 s) of public and NATed workers under load; recovery includes the NATed
//     workers finding themselves private and holding a relay reservation again. Records a worker
//     stored alone while cut off count as lost only when still unreadable a minute after the last
//     fault (it rejoins within seconds). Needs root (skips without, fails under CI=true).
//   - soak (TestSoakNoGrowth), 15 s (10 min): load and kills; this process's goroutines, fds and heap
//     and a never-killed worker's fds and RSS are compared before and after (figures printed).
//
// Rows of the reliability table are written by report.Record when HIVEMIND_RELIABILITY_OUT is set
// (scripts/reliability).
package chaos
