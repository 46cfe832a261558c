package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// NodeConfig is the whole configuration of a worker's node; it travels to the worker in the
// Configure call. Passed by value; every zero field means the default.
type NodeConfig struct {
	// StateDir holds the worker's durable state: identity file (unless IdentityPath), node ID and the
	// records its node stores (its own and those other peers replicate onto it), so a restarted
	// worker keeps its peer ID and every acknowledged record.
	// Empty: nothing is persisted and the identity is ephemeral.
	StateDir string
	// IdentityPath is the libp2p identity file, created when missing. Default <StateDir>/identity.key.
	IdentityPath string
	// HostMaddrs are the multiaddrs to listen on. Default: the p2p package's (loopback TCP, port 0).
	HostMaddrs []string
	// AnnounceMaddrs replace the announced addresses (explicit ports only).
	AnnounceMaddrs []string
	// InitialPeers are multiaddrs ending in /p2p/<peer id> to bootstrap from.
	InitialPeers []string
	// ClientMode: the node serves no DHT RPCs and is never added to routing tables.
	ClientMode bool
	// DHT tunes the node (hivemind's DHTNode parameters).
	DHT DHTParams
	// Validators are the record validators, as data.
	Validators []ValidatorSpec
	// NoPersistRecords: do not persist the node's records even when StateDir is set.
	NoPersistRecords bool

	// NAT traversal, as hivemind's P2P.create arguments name it (README "Behind a NAT"). The zero
	// values are hivemind's defaults, except NATPortMap, which hivemind turns on.

	// DisableRelay turns the circuit relay transport and the relay service off (use_relay=False).
	DisableRelay bool
	// DisableRelayService keeps the relay transport but relays for nobody (p2pd -relayService=0).
	DisableRelayService bool
	// UseAutoRelay reserves slots on relays while the node is private and announces the
	// /p2p-circuit addresses they give (use_auto_relay). Needs TrustedRelays or InitialPeers.
	UseAutoRelay bool
	// TrustedRelays are the relays auto-relay tries first, each ending in /p2p/<peer id>
	// (trusted_relays); default: InitialPeers. Only with UseAutoRelay.
	TrustedRelays []string
	// DisableAutoNAT turns the AutoNAT service for others and hole punching off (auto_nat=False).
	DisableAutoNAT bool
	// NATPortMap asks the local router for port mappings over UPnP / NAT-PMP (nat_port_map).
	NATPortMap bool
	// ForceReachability is "public" or "private" to fix what AutoNAT would detect
	// (force_reachability); empty: detect it.
	ForceReachability string
	// NoListen: listen on no address and dial out only (no_listen); excludes HostMaddrs.
	NoListen bool
	// Relay sizes the relay service; zero fields take p2pd's defaults.
	Relay RelayLimits
	// DHTMode is the libp2p kad DHT's mode (dht_mode): "server", "client" or "auto" (follows the
	// detected reachability). Empty: server, or client when ClientMode.
	DHTMode string
}

// RelayLimits size the relay service a node runs for other peers (p2pd's -relayMaxCircuits,
// -relayMaxReservations, -relayBufferSize, -relayDataLimit, -relayTimeLimit); zero means p2pd's
// default (16 circuits per peer, 128 reservations, 16 MiB buffers, 4 GiB and 30 min per relayed
// connection).
type RelayLimits struct {
	MaxCircuits     int
	MaxReservations int
	BufferSize      int64
	DataLimit       int64
	TimeLimit       time.Duration
}

// DHTParams mirror dht.Config's tunables. Zero means the default; RefreshInterval, CacheNearest,
// CacheRefreshBeforeExpiry, BlacklistTime and MaxExpirationHorizon are disabled by a negative
// value, MaxStorageEntries made unbounded.
type DHTParams struct {
	BucketSize               int
	NumReplicas              int
	DepthModulo              int
	ParallelRPC              int
	WaitTimeout              time.Duration
	BootstrapTimeout         time.Duration
	RefreshInterval          time.Duration
	NumWorkers               int
	ChunkSize                int
	CacheSize                int
	DisableCacheLocally      bool
	CacheNearest             int
	CacheRefreshBeforeExpiry time.Duration
	DisableCacheOnStore      bool
	DisableGetReuse          bool
	BlacklistTime            time.Duration
	BackoffRate              float64
	// AllowBootstrapFailure: start even when no initial peer answers (ensure_bootstrap_success=False).
	AllowBootstrapFailure bool
	// LenientBootstrap: log bootstrap validation errors instead of failing (strict=False).
	LenientBootstrap  bool
	MaxStorageEntries int
	// MaxExpirationHorizon bounds the expirations inbound STOREs may set (dht.Config's field of the
	// same name): default 7 days.
	MaxExpirationHorizon time.Duration
}

// ValidatorSpec is one record validator; exactly one field is set.
type ValidatorSpec struct {
	RSA    *RSAValidatorSpec
	Schema *SchemaValidatorSpec
}

// RSAValidatorSpec is hivemind's RSASignatureValidator.
type RSAValidatorSpec struct {
	// PrivateKeyFile is the PEM RSA key that signs owned records, created when missing. Empty: a key
	// generated for the worker's lifetime.
	PrivateKeyFile string
}

// SchemaValidatorSpec is hivemind's SchemaValidator with the schema as data: ConfigJSON is the JSON
// form of dht/validator.SchemaConfig (json.Marshal of one).
type SchemaValidatorSpec struct {
	ConfigJSON []byte
}

// Validate checks every field and reports each bad one (errors wrap ErrInvalidConfig).
func (c NodeConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	maddrs := func(field string, list []string) {
		for i, m := range list {
			if !strings.HasPrefix(m, "/") {
				bad(fmt.Sprintf("%s[%d]", field, i), "%q is not a multiaddr", m)
			}
		}
	}
	maddrs("HostMaddrs", c.HostMaddrs)
	maddrs("AnnounceMaddrs", c.AnnounceMaddrs)
	maddrs("InitialPeers", c.InitialPeers)
	for i, m := range c.InitialPeers {
		if strings.HasPrefix(m, "/") && !strings.Contains(m, "/p2p/") {
			bad(fmt.Sprintf("InitialPeers[%d]", i), "%q does not end in /p2p/<peer id>", m)
		}
	}
	c.validateNAT(bad, maddrs)
	d := c.DHT
	for _, f := range []struct {
		name string
		v    int
	}{
		{name: "BucketSize", v: d.BucketSize}, {name: "NumReplicas", v: d.NumReplicas},
		{name: "DepthModulo", v: d.DepthModulo}, {name: "ParallelRPC", v: d.ParallelRPC},
		{name: "NumWorkers", v: d.NumWorkers}, {name: "ChunkSize", v: d.ChunkSize},
		{name: "CacheSize", v: d.CacheSize},
	} {
		if f.v < 0 || f.v > math.MaxInt32 {
			bad("DHT."+f.name, "must be between 0 and %d, got %d", math.MaxInt32, f.v)
		}
	}
	if d.WaitTimeout < 0 {
		bad("DHT.WaitTimeout", "negative (%v)", d.WaitTimeout)
	}
	if d.BootstrapTimeout < 0 {
		bad("DHT.BootstrapTimeout", "negative (%v)", d.BootstrapTimeout)
	}
	if d.MaxExpirationHorizon > 0 && d.MaxExpirationHorizon < time.Duration(dht.MaxClockDiscrepancy*float64(time.Second)) {
		bad("DHT.MaxExpirationHorizon", "must be at least %vs when positive (negative: no bound), got %v",
			dht.MaxClockDiscrepancy, d.MaxExpirationHorizon)
	}
	if math.IsNaN(d.BackoffRate) || math.IsInf(d.BackoffRate, 0) || d.BackoffRate < 0 ||
		(d.BackoffRate > 0 && d.BackoffRate < 1) {
		bad("DHT.BackoffRate", "must be 0 (default) or a finite number >= 1, got %v", d.BackoffRate)
	}
	for i, v := range c.Validators {
		if (v.RSA == nil) == (v.Schema == nil) {
			bad(fmt.Sprintf("Validators[%d]", i), "exactly one of RSA and Schema must be set")
		}
		if v.Schema != nil && !json.Valid(v.Schema.ConfigJSON) {
			bad(fmt.Sprintf("Validators[%d].Schema.ConfigJSON", i), "not valid JSON")
		}
	}
	return errors.Join(errs...)
}

// toProto converts the configuration for the Configure call.
func (c NodeConfig) toProto() *ipcpb.NodeConfig {
	d := c.DHT
	out := &ipcpb.NodeConfig{
		StateDir:       c.StateDir,
		IdentityPath:   c.IdentityPath,
		HostMaddrs:     append([]string(nil), c.HostMaddrs...),
		AnnounceMaddrs: append([]string(nil), c.AnnounceMaddrs...),
		InitialPeers:   append([]string(nil), c.InitialPeers...),
		ClientMode:     c.ClientMode,
		Dht: &ipcpb.DHTParams{
			BucketSize:                      int32(d.BucketSize),
			NumReplicas:                     int32(d.NumReplicas),
			DepthModulo:                     int32(d.DepthModulo),
			ParallelRpc:                     int32(d.ParallelRPC),
			WaitTimeoutSeconds:              d.WaitTimeout.Seconds(),
			BootstrapTimeoutSeconds:         d.BootstrapTimeout.Seconds(),
			RefreshIntervalSeconds:          d.RefreshInterval.Seconds(),
			NumWorkers:                      int32(d.NumWorkers),
			ChunkSize:                       int32(d.ChunkSize),
			CacheSize:                       int32(d.CacheSize),
			DisableCacheLocally:             d.DisableCacheLocally,
			CacheNearest:                    int32(max(min(d.CacheNearest, math.MaxInt32), math.MinInt32)),
			CacheRefreshBeforeExpirySeconds: d.CacheRefreshBeforeExpiry.Seconds(),
			DisableCacheOnStore:             d.DisableCacheOnStore,
			DisableGetReuse:                 d.DisableGetReuse,
			BlacklistTimeSeconds:            d.BlacklistTime.Seconds(),
			BackoffRate:                     d.BackoffRate,
			AllowBootstrapFailure:           d.AllowBootstrapFailure,
			LenientBootstrap:                d.LenientBootstrap,
			MaxStorageEntries:               int32(max(min(d.MaxStorageEntries, math.MaxInt32), math.MinInt32)),
			MaxExpirationHorizonSeconds:     d.MaxExpirationHorizon.Seconds(),
		},
		NoPersistRecords:    c.NoPersistRecords,
		DisableRelay:        c.DisableRelay,
		DisableRelayService: c.DisableRelayService,
		UseAutoRelay:        c.UseAutoRelay,
		TrustedRelays:       append([]string(nil), c.TrustedRelays...),
		DisableAutoNat:      c.DisableAutoNAT,
		NatPortMap:          c.NATPortMap,
		ForceReachability:   c.ForceReachability,
		NoListen:            c.NoListen,
		DhtMode:             c.DHTMode,
	}
	if r := c.Relay; r != (RelayLimits{}) {
		out.RelayLimits = &ipcpb.RelayLimits{
			MaxCircuits:      int32(min(r.MaxCircuits, math.MaxInt32)),
			MaxReservations:  int32(min(r.MaxReservations, math.MaxInt32)),
			BufferSize:       r.BufferSize,
			DataLimit:        r.DataLimit,
			TimeLimitSeconds: r.TimeLimit.Seconds(),
		}
	}
	for _, v := range c.Validators {
		switch {
		case v.RSA != nil:
			out.Validators = append(out.Validators, &ipcpb.ValidatorSpec{Kind: &ipcpb.ValidatorSpec_Rsa{
				Rsa: &ipcpb.RSAValidatorSpec{PrivateKeyFile: v.RSA.PrivateKeyFile},
			}})
		case v.Schema != nil:
			out.Validators = append(out.Validators, &ipcpb.ValidatorSpec{Kind: &ipcpb.ValidatorSpec_Schema{
				Schema: &ipcpb.SchemaValidatorSpec{ConfigJson: v.Schema.ConfigJSON},
			}})
		}
	}
	return out
}

// validateNAT checks the NAT-traversal fields and their combinations (the worker's host checks the
// same again, with the multiaddrs parsed).
func (c NodeConfig) validateNAT(bad func(field, format string, args ...any), maddrs func(field string, list []string)) {
	maddrs("TrustedRelays", c.TrustedRelays)
	for i, m := range c.TrustedRelays {
		if strings.HasPrefix(m, "/") && !strings.Contains(m, "/p2p/") {
			bad(fmt.Sprintf("TrustedRelays[%d]", i), "%q does not end in /p2p/<peer id>", m)
		}
	}
	if len(c.TrustedRelays) > 0 && !c.UseAutoRelay {
		bad("TrustedRelays", "set without UseAutoRelay (trusted relays are auto-relay's candidates)")
	}
	if c.UseAutoRelay && c.DisableRelay {
		bad("UseAutoRelay", "needs the relay, which DisableRelay turns off")
	}
	if c.UseAutoRelay && len(c.TrustedRelays) == 0 && len(c.InitialPeers) == 0 {
		bad("UseAutoRelay", "has no relay to start from: give TrustedRelays or InitialPeers")
	}
	if c.NoListen && len(c.HostMaddrs) > 0 {
		bad("NoListen", "set together with HostMaddrs; use one of them")
	}
	switch c.ForceReachability {
	case "", "public", "private":
	default:
		bad("ForceReachability", "%q is not public or private", c.ForceReachability)
	}
	switch c.DHTMode {
	case "", "server", "client", "auto":
	default:
		bad("DHTMode", "%q is not server, client or auto", c.DHTMode)
	}
	r := c.Relay
	for _, f := range []struct {
		name string
		v    int64
	}{
		{name: "MaxCircuits", v: int64(r.MaxCircuits)}, {name: "MaxReservations", v: int64(r.MaxReservations)},
		{name: "BufferSize", v: r.BufferSize}, {name: "DataLimit", v: r.DataLimit}, {name: "TimeLimit", v: int64(r.TimeLimit)},
	} {
		if f.v < 0 {
			bad("Relay."+f.name, "negative (%d)", f.v)
		}
	}
	if r.MaxCircuits > math.MaxInt32 || r.MaxReservations > math.MaxInt32 || r.BufferSize > math.MaxInt32 {
		bad("Relay", "MaxCircuits, MaxReservations and BufferSize must be at most %d", math.MaxInt32)
	}
}
