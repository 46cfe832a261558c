package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

// oneShotFlags are the flags get and store share: both join the DHT through a short-lived
// client-mode worker.
type oneShotFlags struct {
	peers   cli.List
	rawKey  bool
	subkey  string
	timeout time.Duration
	verbose bool
	nat     natFlags
}

func (o *oneShotFlags) register(fs *flag.FlagSet) {
	fs.Var(&o.peers, "initial-peers", "multiaddrs of peers to join through, each ending in /p2p/<peer id> (required)")
	fs.BoolVar(&o.rawKey, "raw-key", false, "KEY's bytes are the key, as a Python bytes key (default: a string key)")
	fs.StringVar(&o.subkey, "subkey", "", "subkey of a dictionary value (JSON, or a plain string)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "bound on the whole command")
	fs.BoolVar(&o.verbose, "verbose", false, "show the worker's logs on stderr")
	o.nat.register(fs)
}

func (o *oneShotFlags) key(s string) (dht.Key, error) {
	if o.rawKey {
		return dht.RawKey([]byte(s)), nil
	}
	return dht.KeyOf(s)
}

// subkeyValue parses --subkey: JSON when it is JSON, else the string itself.
func (o *oneShotFlags) subkeyValue() any {
	if v, err := fromJSON(o.subkey); err == nil {
		return v
	}
	return o.subkey
}

// join starts a client-mode worker bootstrapped from the initial peers, with dhtParams (the zero
// value: hivemind's defaults). The peers are checked first, so a command line without them never
// starts a worker.
func (o *oneShotFlags) join(ctx context.Context, name string, dhtParams ipc.DHTParams, stderr io.Writer) (*ipc.Worker, error) {
	if len(o.peers) == 0 {
		return nil, cli.Usagef("%s needs --initial-peers (a multiaddr ending in /p2p/<peer id>, printed by \"supervisor run\")", name)
	}
	level := slog.Level(100) // silent: failures are returned as one line
	if o.verbose {
		level = slog.LevelDebug
	}
	node := ipc.NodeConfig{InitialPeers: o.peers, ClientMode: true, DHT: dhtParams}
	if err := o.nat.apply(&node); err != nil {
		return nil, err
	}
	if err := node.Validate(); err != nil {
		return nil, cli.AsUsage(err)
	}
	w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{
		Name:   name,
		Node:   node,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if errors.Is(err, dht.ErrBootstrapFailed) {
		return nil, fmt.Errorf("cannot join the DHT: none of the initial peers answered (%s)", cli.OneLine(err))
	}
	return w, err
}
