package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

// newFlagSet returns a supervisor command's flag set (see cli.NewFlagSet).
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	return cli.NewFlagSet(cli.Usage{Prog: prog, Name: name, Synopsis: synopsis, About: about}, stderr)
}

// isPeerMaddr reports whether s looks like a full peer multiaddr (…/p2p/<id>): such positional
// arguments after --initial-peers are more initial peers, as with hivemind's nargs='*'.
func isPeerMaddr(s string) bool { return strings.HasPrefix(s, "/") && strings.Contains(s, "/p2p/") }

// splitPeers moves the positional peer multiaddrs before "--" into peers and returns the other
// positional arguments, in order.
func splitPeers(pos cli.Positionals, peers *cli.List) []string {
	var rest []string
	for _, a := range pos.Free {
		if isPeerMaddr(a) {
			*peers = append(*peers, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(rest, pos.Literal...)
}

// nodeFlags are the node options shared by run and dht.
type nodeFlags struct {
	initialPeers   cli.List
	hostMaddrs     cli.List
	announceMaddrs cli.List
	clientMode     bool
	rsaKey         string
	schemaFile     string
	dht            ipc.DHTParams
}

func (n *nodeFlags) register(fs *flag.FlagSet) {
	fs.Var(&n.initialPeers, "initial-peers", "multiaddrs of peers to bootstrap from, each ending in /p2p/<peer id> (repeatable; comma or space separated)")
	fs.Var(&n.hostMaddrs, "host-maddrs", "multiaddrs to listen on (default /ip4/127.0.0.1/tcp/0: loopback only; use /ip4/0.0.0.0/tcp/0 to be reachable)")
	fs.Var(&n.announceMaddrs, "announce-maddrs", "multiaddrs to announce instead of the listen addresses (explicit ports)")
	fs.BoolVar(&n.clientMode, "client-mode", false, "run client-mode nodes: they serve no DHT requests and join no routing table")
	fs.StringVar(&n.rsaKey, "rsa-key", "", "add hivemind's RSASignatureValidator signing with this PEM key file (created when missing)")
	fs.StringVar(&n.schemaFile, "schema", "", "add a SchemaValidator from this JSON file (dht/validator.SchemaConfig)")
	d := &n.dht
	fs.IntVar(&d.BucketSize, "bucket-size", 0, "k: bucket size and default beam size (0: 20)")
	fs.IntVar(&d.NumReplicas, "num-replicas", 0, "replicas per stored key (0: 5)")
	fs.IntVar(&d.DepthModulo, "depth-modulo", 0, "bucket split rule b (0: 5)")
	fs.IntVar(&d.ParallelRPC, "parallel-rpc", 0, "max concurrent outgoing RPCs (0: unlimited)")
	fs.DurationVar(&d.WaitTimeout, "wait-timeout", 0, "per-RPC timeout (0: 3s)")
	fs.DurationVar(&d.BootstrapTimeout, "bootstrap-timeout", 0, "bootstrap budget (0: wait-timeout)")
	fs.DurationVar(&d.RefreshInterval, "refresh-interval", 0, "routing-table refresh period (0: 60s; negative: off)")
	fs.IntVar(&d.NumWorkers, "num-workers", 0, "concurrent FIND calls per lookup (0: 4)")
	fs.IntVar(&d.CacheSize, "cache-size", 0, "local cache entries (0: unbounded)")
	fs.BoolVar(&d.DisableCacheLocally, "no-cache-locally", false, "do not cache GET results locally")
	fs.IntVar(&d.CacheNearest, "cache-nearest", 0, "push found values to this many nearest nodes (0: 1; negative: off)")
	fs.DurationVar(&d.BlacklistTime, "blacklist-time", 0, "base ban of unresponsive peers (0: 5s; negative: off)")
	fs.BoolVar(&d.AllowBootstrapFailure, "allow-bootstrap-failure", false, "start even when no initial peer answers")
	fs.DurationVar(&d.MaxExpirationHorizon, "max-expiration-horizon", 0, "refuse inbound records expiring later than this from now (0: 168h; negative: no bound)")
}

// nodeConfig builds the node configuration.
func (n *nodeFlags) nodeConfig() (ipc.NodeConfig, error) {
	cfg := ipc.NodeConfig{
		HostMaddrs:     n.hostMaddrs,
		AnnounceMaddrs: n.announceMaddrs,
		InitialPeers:   n.initialPeers,
		ClientMode:     n.clientMode,
		DHT:            n.dht,
	}
	if n.rsaKey != "" {
		abs, err := filepath.Abs(n.rsaKey)
		if err != nil {
			return cfg, err
		}
		cfg.Validators = append(cfg.Validators, ipc.ValidatorSpec{RSA: &ipc.RSAValidatorSpec{PrivateKeyFile: abs}})
	}
	if n.schemaFile != "" {
		data, err := os.ReadFile(n.schemaFile)
		if err != nil {
			return cfg, cli.Usagef("--schema: %v", err)
		}
		cfg.Validators = append(cfg.Validators, ipc.ValidatorSpec{Schema: &ipc.SchemaValidatorSpec{ConfigJSON: data}})
	}
	return cfg, cli.AsUsage(cfg.Validate())
}

// defaultStateDir is a per-user state directory: $XDG_STATE_HOME/hivemind-go,
// ~/.local/state/hivemind-go, or the user cache directory's hivemind-go.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "hivemind-go")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "hivemind-go")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "hivemind-go")
	}
	return filepath.Join(os.TempDir(), "hivemind-go")
}
