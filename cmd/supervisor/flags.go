package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hivemind-go/hivemind/ipc"
)

// usageError is a bad command line: main prints it with a hint and exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// listFlag is a repeatable flag; each use may also hold several values separated by commas or
// spaces.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		*l = append(*l, f)
	}
	return nil
}

// newFlagSet returns a flag set that reports errors instead of exiting, with a usage text.
func newFlagSet(name, synopsis, about string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: supervisor %s\n\n%s\n\nflags:\n", synopsis, about)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags anywhere among the arguments (Go's flag package stops at the first
// positional one) and returns the positional arguments. "-h"/"--help" returns flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// isPeerMaddr reports whether s looks like a full peer multiaddr (…/p2p/<id>): such positional
// arguments after --initial-peers are more initial peers, as with hivemind's nargs='*'.
func isPeerMaddr(s string) bool { return strings.HasPrefix(s, "/") && strings.Contains(s, "/p2p/") }

// splitPeers moves positional peer multiaddrs into peers.
func splitPeers(pos []string, peers *listFlag) []string {
	var rest []string
	for _, a := range pos {
		if isPeerMaddr(a) {
			*peers = append(*peers, a)
		} else {
			rest = append(rest, a)
		}
	}
	return rest
}

// nodeFlags are the node options shared by run and dht.
type nodeFlags struct {
	initialPeers   listFlag
	hostMaddrs     listFlag
	announceMaddrs listFlag
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
			return cfg, usagef("--schema: %v", err)
		}
		cfg.Validators = append(cfg.Validators, ipc.ValidatorSpec{Schema: &ipc.SchemaValidatorSpec{ConfigJSON: data}})
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{msg: oneLine(err)}
	}
	return cfg, nil
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

// oneLine flattens a multi-line error message into one line.
func oneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.Join(strings.Fields(s), " ")
}

// durationSeconds formats a duration as seconds for messages.
func durationSeconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
