package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

const dhtAbout = `Runs one DHT node (a supervised worker process), like hivemind-dht: prints one
"MADDR <multiaddr>" line per visible address once the node is ready (again after a restart, and
whenever the addresses change: a relay reservation adds /p2p-circuit addresses), then every
--refresh-period the routing-table size and the number of stored keys, until SIGINT/SIGTERM.
Others join it with --initial-peers <one of the MADDR addresses>.
Behind a NAT: --use-auto-relay makes the node reachable through a relay (README, "Behind a NAT").`

// maddrPollInterval is how often dht asks its worker for its addresses, to print them again when
// they change.
const maddrPollInterval = 2 * time.Second

func runDHT(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dht", "dht [flags]", dhtAbout, stderr)
	var nf nodeFlags
	nf.register(fs)
	identity := fs.String("identity-path", "", "identity key file (created when missing; see supervisor keygen); default: <state-dir>/identity.key, or a fresh identity")
	stateDir := fs.String("state-dir", "", "directory for the node's durable state (identity, node ID, records); default: none")
	refresh := cli.PositiveDuration(fs, "refresh-period", 30*time.Second, "period of the status lines")
	var level cli.Level
	fs.Var(&level, "log-level", "log level: debug, info (the default), warn or error")
	pos, err := cli.ParseArgs(fs, args, nil)
	if err != nil {
		return err
	}
	if rest := splitPeers(pos, &nf.initialPeers); len(rest) > 0 {
		return cli.Usagef("dht takes no arguments, got %q", rest)
	}
	node, err := nf.nodeConfig()
	if err != nil {
		return err
	}
	for _, p := range []*string{identity, stateDir} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}
	node.IdentityPath, node.StateDir = *identity, *stateDir
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level.Level}))
	launcher, err := ipc.NewExecLauncher(ipc.ExecConfig{Env: []string{workerLogLevel(level)}})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var printed []string // the MADDR lines printed last, sorted; guarded by mu
	printMaddrs := func(ms []string) {
		for _, m := range ms {
			fmt.Fprintf(stdout, "MADDR %s\n", m)
		}
		printed = slices.Sorted(slices.Values(ms))
	}
	pool, err := ipc.NewPool(ipc.PoolConfig{
		Name: "dht",
		Node: node,
		EventHook: func(e ipc.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e := e.(type) {
			case ipc.EventReady:
				printMaddrs(e.Maddrs)
			case ipc.EventExited, ipc.EventGaveUp:
				fmt.Fprintln(stdout, e.String())
			}
		},
		Logger: logger,
	}, launcher)
	if err != nil {
		return cli.AsUsage(err)
	}
	served := make(chan error, 1)
	go func() { served <- pool.Serve(context.Background()) }()
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_, err := pool.Shutdown(sctx)
		return err
	}
	if err := pool.WaitReady(ctx); err != nil {
		return errorsJoin(err, stop())
	}
	client := pool.Client(0, ipc.ClientOptions{})
	tick := time.NewTicker(*refresh)
	defer tick.Stop()
	maddrTick := time.NewTicker(maddrPollInterval)
	defer maddrTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return stop()
		case err := <-served:
			return err
		case <-maddrTick.C:
			mctx, cancel := context.WithTimeout(ctx, maddrPollInterval)
			ms, err := client.VisibleMaddrs(mctx, true)
			cancel()
			mu.Lock()
			if err == nil && !slices.Equal(slices.Sorted(slices.Values(ms)), printed) {
				printMaddrs(ms)
			}
			mu.Unlock()
			continue
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, *refresh)
		if st, err := client.Stats(sctx); err == nil {
			mu.Lock()
			fmt.Fprintf(stdout, "%d DHT nodes (including this one) are in the local routing table\n", st.RoutingTableSize+1)
			fmt.Fprintf(stdout, "Local storage contains %d keys\n", st.StoredKeys)
			mu.Unlock()
		}
		// Like hivemind-dht: a lookup of a random key contacts peers and evicts stale ones.
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		if key, err := dht.KeyOf("heartbeat_" + hex.EncodeToString(b)); err == nil {
			_, _ = client.Get(sctx, key, dht.GetOptions{Latest: true})
		}
		cancel()
	}
}

func errorsJoin(a, b error) error {
	if b == nil {
		return a
	}
	return fmt.Errorf("%w (stopping: %v)", a, b)
}
