package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/p2p"
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
	nat            natFlags
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
	n.nat.register(fs)
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
	if err := n.nat.apply(&cfg); err != nil {
		return cfg, err
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

// natFlags are the NAT-traversal flags, named after hivemind's P2P.create arguments with
// hivemind's defaults (but --nat-port-map), plus p2pd's relay-service limits. run, dht, store and
// get take them.
type natFlags struct {
	useRelay, relayService, useAutoRelay, autoNAT, natPortMap, noListen bool
	trustedRelays                                                       cli.List
	forceReachability, dhtMode                                          string
	relay                                                               ipc.RelayLimits
	// deprecated records the deprecated hivemind flags given, to refuse them after parsing.
	deprecated map[string]bool
}

// deprecatedNATFlags are hivemind's P2P.create arguments that have no effect since libp2p 0.17,
// with what to do instead.
var deprecatedNATFlags = map[string]string{
	"use-relay-hop":       "every node with --use-relay relays for others (see --relay-service)",
	"use-relay-discovery": "--use-auto-relay discovers relays through the DHT after --trusted-relays (or the initial peers)",
	"relay-hop-limit":     "a relay carries one hop; see --relay-max-circuits for its limits",
	"quic":                "QUIC runs when --host-maddrs has a /quic-v1 address",
}

func (n *natFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&n.useRelay, "use-relay", true, "run the circuit relay transport (reach peers behind NATs through relays) and the relay service for others (hivemind use_relay)")
	fs.BoolVar(&n.relayService, "relay-service", true, "with --use-relay, relay for other peers (p2pd -relayService)")
	fs.BoolVar(&n.useAutoRelay, "use-auto-relay", false, "when this node finds itself behind a NAT, reserve slots on relays and announce /p2p-circuit addresses through them (hivemind use_auto_relay)")
	fs.Var(&n.trustedRelays, "trusted-relays", "relays --use-auto-relay tries first, each ending in /p2p/<peer id> (default: the initial peers) (hivemind trusted_relays)")
	fs.BoolVar(&n.autoNAT, "auto-nat", true, "run the AutoNAT service (tell other peers whether they are reachable) and hole punching (hivemind auto_nat)")
	fs.BoolVar(&n.natPortMap, "nat-port-map", false, "ask the local router for port mappings over UPnP / NAT-PMP (hivemind nat_port_map, which hivemind turns on: off here, it sends discovery traffic to the local network)")
	fs.StringVar(&n.forceReachability, "force-reachability", "", "public or private: fix the reachability AutoNAT would detect (hivemind force_reachability)")
	fs.StringVar(&n.dhtMode, "dht-mode", "", "mode of the libp2p kad DHT used to find peers' addresses: server, client or auto (follows the detected reachability); default server, or client with --client-mode and for store and get (hivemind dht_mode)")
	fs.BoolVar(&n.noListen, "no-listen", false, "listen on no address and dial out only; excludes --host-maddrs (hivemind no_listen)")
	fs.IntVar(&n.relay.MaxCircuits, "relay-max-circuits", p2p.DefaultRelayMaxCircuits, "relay service: circuits open at once from, and to, one peer (p2pd -relayMaxCircuits)")
	fs.IntVar(&n.relay.MaxReservations, "relay-max-reservations", p2p.DefaultRelayMaxReservations, "relay service: reservations held at once (p2pd -relayMaxReservations)")
	fs.Int64Var(&n.relay.BufferSize, "relay-buffer-size", p2p.DefaultRelayBufferSize, "relay service: bytes of each of a circuit's two buffers (p2pd -relayBufferSize)")
	fs.Int64Var(&n.relay.DataLimit, "relay-data-limit", p2p.DefaultRelayDataLimit, "relay service: bytes relayed each way on one relayed connection (p2pd -relayDataLimit)")
	fs.DurationVar(&n.relay.TimeLimit, "relay-time-limit", p2p.DefaultRelayTimeLimit, "relay service: life of one relayed connection (p2pd -relayTimeLimit)")
	n.deprecated = map[string]bool{}
	for name := range deprecatedNATFlags {
		fs.Var(deprecatedFlag{name: name, seen: n.deprecated}, name, "deprecated in hivemind, no effect since libp2p 0.17: refused")
	}
}

// apply sets the NAT options of cfg, or refuses a deprecated flag. The usage errors name the
// flags; the rest is checked by cfg.Validate.
func (n *natFlags) apply(cfg *ipc.NodeConfig) error {
	var given []string
	for name := range n.deprecated {
		given = append(given, name)
	}
	sort.Strings(given)
	if len(given) > 0 {
		return cli.Usagef("--%s is deprecated in hivemind and has no effect since libp2p 0.17.0; drop it (%s)", given[0], deprecatedNATFlags[given[0]])
	}
	if n.relay.TimeLimit <= 0 || n.relay.MaxCircuits <= 0 || n.relay.MaxReservations <= 0 || n.relay.BufferSize <= 0 || n.relay.DataLimit <= 0 {
		return cli.Usagef("--relay-max-circuits, --relay-max-reservations, --relay-buffer-size, --relay-data-limit and --relay-time-limit must be positive")
	}
	cfg.DisableRelay = !n.useRelay
	cfg.DisableRelayService = !n.relayService
	cfg.UseAutoRelay = n.useAutoRelay
	cfg.TrustedRelays = n.trustedRelays
	cfg.DisableAutoNAT = !n.autoNAT
	cfg.NATPortMap = n.natPortMap
	cfg.ForceReachability = n.forceReachability
	cfg.NoListen = n.noListen
	cfg.DHTMode = n.dhtMode
	cfg.Relay = n.relay
	return nil
}

// deprecatedFlag is a flag that is accepted by the parser, with or without a value, and refused
// afterwards with an explanation (natFlags.apply).
type deprecatedFlag struct {
	name string
	seen map[string]bool
}

func (d deprecatedFlag) String() string   { return "" }
func (d deprecatedFlag) IsBoolFlag() bool { return true }

func (d deprecatedFlag) Set(string) error {
	d.seen[d.name] = true
	return nil
}
