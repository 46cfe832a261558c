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
		NoPersistRecords: c.NoPersistRecords,
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
