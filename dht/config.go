package dht

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults of a Node's Config: hivemind's DHTNode defaults (spec §2.1), except RefreshInterval
// (hivemind's routing-table refresh is off and broken; ours runs every minute) and the bounds that
// hivemind does not have.
const (
	DefaultBucketSize               = 20
	DefaultNumReplicas              = 5
	DefaultDepthModulo              = 5
	DefaultWaitTimeout              = 3 * time.Second
	DefaultRefreshInterval          = 60 * time.Second
	DefaultCacheNearest             = 1
	DefaultCacheRefreshBeforeExpiry = 5 * time.Second
	DefaultNumWorkers               = 4
	DefaultChunkSize                = 16
	DefaultBlacklistTime            = 5 * time.Second
	DefaultBackoffRate              = 2.0
	// DefaultMaxStorageEntries bounds the local storage: keys plus dictionary subkeys.
	DefaultMaxStorageEntries = 1 << 20
	// DefaultMaxRequestItems bounds the items of one inbound STORE and the keys of one inbound FIND.
	DefaultMaxRequestItems = 10_000
	// DefaultMaxExpirationHorizon is how far in the future an inbound STORE may set an expiration
	// (see Config.MaxExpirationHorizon). hivemind and the applications built on it (optimizer and
	// averager metadata, MoE expert and Petals server announcements) store records for seconds to
	// an hour at most and re-store them while they live, since replicas churn; a week is two orders
	// of magnitude above that, and a flood of records at the horizon is gone within a week.
	DefaultMaxExpirationHorizon = 7 * 24 * time.Hour
	// MaxClockDiscrepancy is how far a validated peer's dht_time may lie outside our request's
	// round trip (hivemind's MAX_DHT_TIME_DISCREPANCY_SECONDS).
	MaxClockDiscrepancy = 3.0
)

// Config configures a Node. It is passed by value; the zero value of every field means hivemind's
// default, and New applies the defaults to its own copy, never to the caller's. Booleans whose
// hivemind default is true are expressed inverted (DisableX); durations and counts that hivemind
// lets you switch off are disabled by a negative value.
type Config struct {
	// NodeID is the node's 160-bit ID. The zero ID means a fresh random ID per New (hivemind's
	// DHTID.generate()); a worker that wants a stable ID supplies it.
	NodeID ID
	// ClientMode: the node serves no requests and sends an empty NodeInfo, so peers never add it to
	// their routing tables (its Handle* methods still answer, for an adapter that registers them anyway).
	ClientMode bool
	// InitialPeers are pinged (validated) by Bootstrap, then the node looks up its own ID (spec §2.2).
	InitialPeers []PeerID
	// AllowBootstrapFailure: when no initial peer answers, log a warning instead of failing Bootstrap
	// (hivemind's ensure_bootstrap_success=False). It also makes bootstrap pings non-validating.
	AllowBootstrapFailure bool
	// LenientBootstrap: a validation error of a bootstrap ping (peer cannot reach us, clock off by
	// more than 3 s) is logged instead of failing Bootstrap (hivemind's strict=False).
	LenientBootstrap bool
	// BootstrapTimeout is the time budget of bootstrap stages 2 and 3 (waiting for more pings, the
	// lookup of the own ID). Zero means WaitTimeout.
	BootstrapTimeout time.Duration

	// BucketSize is k: the k-bucket capacity, the default beam size and the number of neighbours a
	// FIND returns. Default 20.
	BucketSize int
	// NumReplicas is the number of nearest nodes (self included) that store each key. Default 5.
	NumReplicas int
	// DepthModulo is b of the bucket split rule. Default 5.
	DepthModulo int
	// ParallelRPC bounds concurrent outgoing RPCs; 0 means unlimited.
	ParallelRPC int
	// WaitTimeout bounds every outgoing RPC (the ctx given to the Transport). Default 3 s.
	WaitTimeout time.Duration
	// NumWorkers is the number of concurrent FIND calls of one traversal. Default 4.
	NumWorkers int
	// ChunkSize caps the queries packed in one FIND by GetMany and the keys of one cache-refresh
	// batch. Default 16.
	ChunkSize int

	// RefreshInterval is the period of the routing-table refresh: each bucket that saw no update
	// during the last period is refreshed by a lookup of a random ID inside it. Default 60 s;
	// negative disables.
	RefreshInterval time.Duration

	// DisableCacheLocally: do not cache GET results locally (hivemind's cache_locally=False).
	DisableCacheLocally bool
	// CacheNearest is the number of nearest visited nodes a found value is pushed to as cache.
	// Default 1; negative disables.
	CacheNearest int
	// CacheSize bounds the local cache: keys plus dictionary subkeys, evicted as the storage's are
	// (fair between the peers that stored them; with one, the earliest expirations first: quirk
	// Q9, as hivemind). 0 means the storage bounds (MaxStorageEntries, MaxStorageBytes);
	// hivemind's default is unbounded.
	CacheSize int
	// CacheRefreshBeforeExpiry: cached values that were used are re-fetched this long before they
	// expire. Default 5 s; negative disables.
	CacheRefreshBeforeExpiry time.Duration
	// DisableCacheOnStore: do not update the local cache after a store.
	DisableCacheOnStore bool
	// DisableGetReuse: concurrent GETs of the same key do not share results.
	DisableGetReuse bool

	// BlacklistTime is the base ban of a peer that did not answer a FIND. Default 5 s; negative
	// disables the blacklist.
	BlacklistTime time.Duration
	// BackoffRate multiplies the ban for each consecutive failure. Default 2.
	BackoffRate float64

	// MaxStorageEntries bounds the local storage (keys plus dictionary subkeys). Over a bound the
	// storage evicts fairly between the peers that stored its records: the earliest-expiring
	// record of the peer holding the largest share of the bounds goes first, so one peer's flood
	// evicts its own records (see LocalStorage; hivemind, unbounded, has no such rule). A store
	// that would have to evict its own record is refused per item. Default
	// DefaultMaxStorageEntries; negative means unbounded.
	MaxStorageEntries int
	// MaxStorageBytes bounds the bytes of the local storage (see LocalStorageConfig). Default
	// DefaultMaxStorageBytes; negative means unbounded.
	MaxStorageBytes int64
	// MaxRequestItems bounds the items of one inbound STORE and the keys of one inbound FIND; a
	// larger request gets an error. Default DefaultMaxRequestItems.
	MaxRequestItems int
	// MaxExpirationHorizon bounds the expirations an inbound STORE may set: an item expiring later
	// than now + MaxExpirationHorizon (+ MaxClockDiscrepancy for the sender's clock), or a whole
	// dictionary with such a subkey, is refused (store_ok false). Without it a peer could fill the
	// bounded storage with records that never expire (1e300) and, the earliest expirations being
	// evicted first, push every honest record out for good. hivemind has no such bound: a Python
	// peer accepts what a Go peer with this bound refuses. A value a GET finds beyond the bound is
	// returned but not cached. The node's own stores (Store, StoreMany) are not bounded locally,
	// but peers with the bound refuse them as replicas.
	// Default DefaultMaxExpirationHorizon (7 days); negative disables; a positive value must be
	// at least MaxClockDiscrepancy (3 s).
	MaxExpirationHorizon time.Duration

	// Persister keeps the storage (not the cache) durable; New loads its records. nil persists
	// nothing. See Persister for the contract.
	Persister Persister

	// Validator signs, validates and strips records; nil accepts everything.
	Validator RecordValidator
	// Clock gives DHT time. Default SystemClock.
	Clock Clock
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
}

// errConfig prefixes every Validate error.
var errConfig = errors.New("dht: invalid config")

// Validate checks every field and returns one error naming each bad field (nil when all are fine).
// Zero values are valid: they mean the defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", errConfig, field, fmt.Sprintf(format, args...)))
	}
	nonNeg := func(field string, v int) {
		if v < 0 {
			bad(field, "must not be negative, got %d", v)
		}
	}
	nonNeg("BucketSize", c.BucketSize)
	nonNeg("NumReplicas", c.NumReplicas)
	nonNeg("DepthModulo", c.DepthModulo)
	nonNeg("ParallelRPC", c.ParallelRPC)
	nonNeg("NumWorkers", c.NumWorkers)
	nonNeg("ChunkSize", c.ChunkSize)
	nonNeg("CacheSize", c.CacheSize)
	nonNeg("MaxRequestItems", c.MaxRequestItems)
	if c.WaitTimeout < 0 {
		bad("WaitTimeout", "must not be negative, got %v", c.WaitTimeout)
	}
	if c.BootstrapTimeout < 0 {
		bad("BootstrapTimeout", "must not be negative, got %v", c.BootstrapTimeout)
	}
	if math.IsNaN(c.BackoffRate) || math.IsInf(c.BackoffRate, 0) || c.BackoffRate < 0 ||
		(c.BackoffRate > 0 && c.BackoffRate < 1) {
		bad("BackoffRate", "must be 0 (default) or a finite number >= 1, got %v", c.BackoffRate)
	}
	if c.MaxExpirationHorizon > 0 && seconds(c.MaxExpirationHorizon) < MaxClockDiscrepancy {
		bad("MaxExpirationHorizon", "must be at least %vs when positive (negative disables), got %v",
			MaxClockDiscrepancy, c.MaxExpirationHorizon)
	}
	if c.RefreshInterval > 0 && c.RefreshInterval < time.Millisecond {
		bad("RefreshInterval", "must be at least 1ms when positive, got %v", c.RefreshInterval)
	}
	seen := make(map[PeerID]bool, len(c.InitialPeers))
	for i, p := range c.InitialPeers {
		switch {
		case p == "":
			bad("InitialPeers", "entry %d is empty", i)
		case seen[p]:
			bad("InitialPeers", "entry %d repeats a peer", i)
		}
		seen[p] = true
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c with every zero field replaced by its default. c must be valid.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.BucketSize, DefaultBucketSize)
	def(&c.NumReplicas, DefaultNumReplicas)
	def(&c.DepthModulo, DefaultDepthModulo)
	def(&c.NumWorkers, DefaultNumWorkers)
	def(&c.ChunkSize, DefaultChunkSize)
	def(&c.CacheNearest, DefaultCacheNearest)
	def(&c.MaxStorageEntries, DefaultMaxStorageEntries)
	def(&c.MaxRequestItems, DefaultMaxRequestItems)
	if c.WaitTimeout == 0 {
		c.WaitTimeout = DefaultWaitTimeout
	}
	if c.BootstrapTimeout == 0 {
		c.BootstrapTimeout = c.WaitTimeout
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxExpirationHorizon == 0 {
		c.MaxExpirationHorizon = DefaultMaxExpirationHorizon
	}
	if c.CacheRefreshBeforeExpiry == 0 {
		c.CacheRefreshBeforeExpiry = DefaultCacheRefreshBeforeExpiry
	}
	if c.BlacklistTime == 0 {
		c.BlacklistTime = DefaultBlacklistTime
	}
	if c.BackoffRate == 0 {
		c.BackoffRate = DefaultBackoffRate
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.InitialPeers = append([]PeerID(nil), c.InitialPeers...)
	return c
}

// seconds converts a duration to DHT-time seconds.
func seconds(d time.Duration) float64 { return d.Seconds() }
