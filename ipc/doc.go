// Package ipc is the parent side of hivemind-go's process boundary (DESIGN.md §4, §5): it launches
// DHT workers, talks to them through a typed client, and supervises them in a pool. It never imports
// package worker, p2p or libp2p; it shares the dht package's value types, codec and sentinel errors.
//
// # One worker
//
// The common launcher case is one call, like hivemind's DHT(initial_peers=..., start=True):
//
//	w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{Node: ipc.NodeConfig{InitialPeers: peers}})
//	if err != nil { ... }            // a bootstrap failure is errors.Is(err, dht.ErrBootstrapFailed)
//	defer w.Stop(context.Background())
//	res, err := w.Get(ctx, dht.MustKey("key"), dht.GetOptions{Latest: true})
//
// The binary must call worker.Main() first thing in main: by default a worker is this executable,
// re-executed (/proc/self/exe). ExecConfig.Path names a separate worker binary instead.
//
// # Launcher, Process, Client
//
// A Launcher makes a worker exist and returns a Process (a gRPC connection, a pid, exit
// notification, signals). ExecLauncher is the production one; tests can serve a worker in process
// (go-plugin's test mode and reattach). Every launch is a new exec.Cmd and a new go-plugin client:
// a go-plugin client starts once.
//
// Client implements dht.Client (Get, GetMany, Store, StoreMany) plus PeerID, VisibleMaddrs, Stats,
// Health, AddPeers (hand a running worker more peers to join) and Shutdown. Every method takes ctx
// first; its deadline and cancellation reach the worker's handler. A validator's rejection is a
// false StoreResult, never an error. Errors are typed:
// ErrWorkerGone, ErrRestarting, ErrDeadlineExceeded (and context.DeadlineExceeded), ErrCanceled,
// ErrInvalidArgument, ErrNotConfigured, ErrGaveUp, ErrStopped, ErrRemote; a dht sentinel the worker
// returned (dht.ErrInvalidKey, dht.ErrNoResponse, ...) comes back as that same sentinel.
//
// Stopping a worker is a sequence (Worker.Stop, Pool.Shutdown): Shutdown RPC with a deadline →
// SIGTERM → SIGKILL → go-plugin's Kill, which then returns at once. go-plugin's Kill and Ping take no
// context and block on a stopped worker, so they are only called once the process is gone; health
// checks use the gRPC health service with a deadline instead.
//
// # Pool
//
// A Pool supervises N slots (suture/OTP style). Each slot is owned by one goroutine that launches a
// worker, watches it (process exit, health checks with deadlines, so a SIGSTOPped or hung worker is
// killed), and restarts it by RestartPolicy with exponential backoff and jitter, until the restart
// intensity (MaxRestarts within Period) is exceeded: the slot — or the pool, by GiveUpScope — then
// gives up with a *GaveUpError naming it and its last exit reasons. Each slot keeps a state directory
// (identity file, node ID, persisted records), so a restarted worker has the same peer ID and every
// record it acknowledged. Every transition is an Event passed to PoolConfig.EventHook; Status is a
// snapshot (pid, peer ID, addresses, state, restarts, last exit, routing-table size, stored keys);
// Shutdown returns a StopReport naming the workers that had to be killed. Pool.Client(i, opts)
// follows slot i across restarts: calls fail fast with ErrRestarting while it restarts, or wait when
// ClientOptions.WaitReady is set. With BootstrapFromPool, a worker that had to start alone (no other
// slot running) is sent AddPeers with the other slots' addresses as soon as one runs, so it joins
// their swarm instead of staying on its own until its next restart.
//
// # The handshake
//
// The parent starts the worker with go-plugin's cookie (ipcpb.MagicCookieKey) in its environment,
// plus the launcher's pid (ipcpb.EnvParentPID) and a lifeline pipe on fd 3 (ipcpb.EnvLifelineFD). The
// worker prints exactly one line on stdout — go-plugin's "1|1|unix|<socket>|grpc|" — and serves
// gRPC on a unix socket in a fresh 0700 directory, with mutual TLS unless
// ExecConfig.DisableAutoMTLS: the launcher writes the worker's certificate and key, signed by an
// authority it made, on the worker's stdin (ipcpb.EnvTLS), and each side accepts only certificates
// of that authority. Its logs are JSON lines on stderr with hclog's keys (@level, @message,
// @timestamp); the parent parses them into its slog logger with slot=<name>, at their own level.
// The first call is Configure (the whole NodeConfig, versioned by ipcpb.ConfigVersion); it returns
// when the worker's host listens and bootstrap finished, or with the bootstrap failure. The worker
// cannot outlive the parent: the fork happens on an OS thread locked for the worker's lifetime
// (Pdeathsig is per thread), the child checks getppid() and watches the lifeline for EOF.
package ipc
