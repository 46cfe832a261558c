package worker

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// libp2pNode is the production Node: a dht.Node served as DHTProtocol on a p2p.Host.
type libp2pNode struct {
	*dhtrpc.Node
	host   *p2p.Host
	peer   dht.PeerID
	b58    string
	maddrs []string
}

var _ Node = (*libp2pNode)(nil)

// Libp2pOptions are the optional parts of NewLibp2pNodeWith. The zero value builds the node
// NewLibp2pNode builds.
type Libp2pOptions struct {
	// DHT wraps the node's DHT RPCs in both directions: the Transport it sends through and the
	// Handler served to its peers (contract: dhtrpc.NodeOptions). It is a seam for fault injection
	// and instrumentation in a NodeFactory of one's own; nil wrappers cost nothing.
	DHT dhtrpc.NodeOptions
}

// NewLibp2pNode builds a p2p.Host and a dht.Node from spec and bootstraps it: the host connects to
// the initial peers, then the node pings them and looks its own ID up. Errors wrap
// dht.ErrBootstrapFailed when no initial peer could be reached. It is the default NodeFactory.
func NewLibp2pNode(ctx context.Context, spec NodeSpec) (Node, error) {
	return NewLibp2pNodeWith(ctx, spec, Libp2pOptions{})
}

// NewLibp2pNodeWith is NewLibp2pNode with options; a NodeFactory that needs them calls it:
//
//	func(ctx context.Context, spec worker.NodeSpec) (worker.Node, error) {
//		return worker.NewLibp2pNodeWith(ctx, spec, worker.Libp2pOptions{DHT: dhtrpc.NodeOptions{WrapTransport: wrap}})
//	}
func NewLibp2pNodeWith(ctx context.Context, spec NodeSpec, opts Libp2pOptions) (_ Node, err error) {
	c := spec.Config
	logger := spec.Logger
	hostCfg, err := hostConfig(c)
	if err != nil {
		return nil, err
	}
	hostCfg.Logger = logger
	if err := hostCfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	dcfg, err := dhtConfig(c, spec)
	if err != nil {
		return nil, err
	}
	host, err := p2p.New(ctx, hostCfg)
	if err != nil {
		if errors.Is(err, p2p.ErrBootstrap) {
			return nil, fmt.Errorf("%w: %w", dht.ErrBootstrapFailed, err)
		}
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, host.Close())
		}
	}()
	node, err := dhtrpc.NewNodeWith(ctx, host, dcfg, opts.DHT)
	if err != nil {
		return nil, err
	}
	id := host.ID()
	return &libp2pNode{
		Node:   node,
		host:   host,
		peer:   dhtrpc.PeerIDFromP2P(id),
		b58:    id.String(),
		maddrs: maddrStrings(host),
	}, nil
}

// hostConfig maps the parent's node configuration onto p2p.Config (without the logger): addresses,
// identity, the kad DHT's mode (dht_mode, else client with client_mode) and the NAT-traversal
// options.
func hostConfig(c *ipcpb.NodeConfig) (p2p.Config, error) {
	cfg := p2p.Config{
		IdentityPath:        c.GetIdentityPath(),
		ListenAddrs:         c.GetHostMaddrs(),
		AnnounceAddrs:       c.GetAnnounceMaddrs(),
		InitialPeers:        c.GetInitialPeers(),
		DHTMode:             p2p.DHTMode(c.GetDhtMode()),
		Reachability:        p2p.Reachability(c.GetForceReachability()),
		DisableRelay:        c.GetDisableRelay(),
		DisableRelayService: c.GetDisableRelayService(),
		AutoRelay:           c.GetUseAutoRelay(),
		TrustedRelays:       c.GetTrustedRelays(),
		DisableAutoNAT:      c.GetDisableAutoNat(),
		NATPortMap:          c.GetNatPortMap(),
		NoListen:            c.GetNoListen(),
	}
	if cfg.DHTMode == "" && c.GetClientMode() {
		cfg.DHTMode = p2p.DHTModeClient
	}
	if r := c.GetRelayLimits(); r != nil {
		limit, ok := durationFromSeconds(r.GetTimeLimitSeconds())
		if !ok {
			return cfg, fmt.Errorf("%w: relay_limits.time_limit_seconds: NaN is not a duration", ErrInvalidConfig)
		}
		cfg.Relay = p2p.RelayLimits{
			MaxCircuits: int(r.GetMaxCircuits()), MaxReservations: int(r.GetMaxReservations()),
			BufferSize: int(r.GetBufferSize()), DataLimit: r.GetDataLimit(), TimeLimit: limit,
		}
	}
	return cfg, nil
}

// dhtConfig maps the parent's parameters onto dht.Config.
func dhtConfig(c *ipcpb.NodeConfig, spec NodeSpec) (dht.Config, error) {
	p := c.GetDht()
	var badSeconds []string
	secs := func(name string, s float64) time.Duration {
		d, ok := durationFromSeconds(s)
		if !ok {
			badSeconds = append(badSeconds, name)
		}
		return d
	}
	cfg := dht.Config{
		NodeID:                   spec.NodeID,
		ClientMode:               c.GetClientMode(),
		AllowBootstrapFailure:    p.GetAllowBootstrapFailure(),
		LenientBootstrap:         p.GetLenientBootstrap(),
		BootstrapTimeout:         secs("bootstrap_timeout_seconds", p.GetBootstrapTimeoutSeconds()),
		BucketSize:               int(p.GetBucketSize()),
		NumReplicas:              int(p.GetNumReplicas()),
		DepthModulo:              int(p.GetDepthModulo()),
		ParallelRPC:              int(p.GetParallelRpc()),
		WaitTimeout:              secs("wait_timeout_seconds", p.GetWaitTimeoutSeconds()),
		NumWorkers:               int(p.GetNumWorkers()),
		ChunkSize:                int(p.GetChunkSize()),
		RefreshInterval:          secs("refresh_interval_seconds", p.GetRefreshIntervalSeconds()),
		DisableCacheLocally:      p.GetDisableCacheLocally(),
		CacheNearest:             int(p.GetCacheNearest()),
		CacheSize:                int(p.GetCacheSize()),
		CacheRefreshBeforeExpiry: secs("cache_refresh_before_expiry_seconds", p.GetCacheRefreshBeforeExpirySeconds()),
		DisableCacheOnStore:      p.GetDisableCacheOnStore(),
		DisableGetReuse:          p.GetDisableGetReuse(),
		BlacklistTime:            secs("blacklist_time_seconds", p.GetBlacklistTimeSeconds()),
		BackoffRate:              p.GetBackoffRate(),
		MaxStorageEntries:        int(p.GetMaxStorageEntries()),
		MaxExpirationHorizon:     secs("max_expiration_horizon_seconds", p.GetMaxExpirationHorizonSeconds()),
		Persister:                spec.Persister,
		Logger:                   spec.Logger,
	}
	if len(badSeconds) > 0 {
		return cfg, fmt.Errorf("%w: %s: NaN is not a duration", ErrInvalidConfig, strings.Join(badSeconds, ", "))
	}
	for i, m := range c.GetInitialPeers() {
		_, id, ok := strings.Cut(m, "/p2p/")
		if !ok {
			return cfg, fmt.Errorf("%w: initial_peers[%d] %q: no /p2p/<peer id>", ErrInvalidConfig, i, m)
		}
		id, _, _ = strings.Cut(id, "/")
		pid, err := p2p.ParsePeerID(id)
		if err != nil {
			return cfg, fmt.Errorf("%w: initial_peers[%d] %q: %w", ErrInvalidConfig, i, m, err)
		}
		dp := dhtrpc.PeerIDFromP2P(pid)
		if !containsPeer(cfg.InitialPeers, dp) {
			cfg.InitialPeers = append(cfg.InitialPeers, dp)
		}
	}
	v, err := buildValidators(c.GetValidators(), spec)
	if err != nil {
		return cfg, err
	}
	if v != nil {
		cfg.Validator = v
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

func containsPeer(list []dht.PeerID, p dht.PeerID) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// buildValidators makes the composite validator of the specs (nil when there are none).
func buildValidators(specs []*ipcpb.ValidatorSpec, spec NodeSpec) (dht.RecordValidator, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	var vs []dht.RecordValidator
	for i, s := range specs {
		switch k := s.GetKind().(type) {
		case *ipcpb.ValidatorSpec_Rsa:
			key, err := loadOrCreateRSAKey(k.Rsa.GetPrivateKeyFile())
			if err != nil {
				return nil, fmt.Errorf("%w: validators[%d]: %w", ErrInvalidConfig, i, err)
			}
			v, err := validator.NewRSASignature(key, spec.Logger)
			if err != nil {
				return nil, fmt.Errorf("%w: validators[%d]: %w", ErrInvalidConfig, i, err)
			}
			vs = append(vs, v)
		case *ipcpb.ValidatorSpec_Schema:
			v, err := newSchemaValidator(k.Schema.GetConfigJson())
			if err != nil {
				return nil, fmt.Errorf("%w: validators[%d]: %w", ErrInvalidConfig, i, err)
			}
			vs = append(vs, v)
		default:
			return nil, fmt.Errorf("%w: validators[%d]: no kind set", ErrInvalidConfig, i)
		}
	}
	return validator.NewComposite(vs...), nil
}

// loadOrCreateRSAKey reads an RSA key file (PEM or DER, as hivemind writes), creating a 2048-bit
// PKCS#1 PEM key when the file does not exist; an empty path gives a key for this process only.
func loadOrCreateRSAKey(path string) (*rsa.PrivateKey, error) {
	if path != "" {
		data, err := os.ReadFile(path)
		if err == nil {
			return validator.ParseRSAPrivateKey(data)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if path != "" {
		data := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := writeFileAtomic(path, data); err != nil {
			return nil, err
		}
	}
	return key, nil
}

// PeerID returns the host's peer ID in both forms.
func (n *libp2pNode) PeerID() (dht.PeerID, string) { return n.peer, n.b58 }

// VisibleMaddrs returns the host's visible multiaddrs.
func (n *libp2pNode) VisibleMaddrs(_ context.Context, latest bool) ([]string, error) {
	if !latest {
		return n.maddrs, nil
	}
	return maddrStrings(n.host), nil
}

// AddPeers connects the host to maddrs (concurrently, each as an initial peer: the address is kept
// and the connection protected) and adds the peers to the DHT node's initial peers, also those the
// host could not connect to: the routing-table refresh tries them again.
func (n *libp2pNode) AddPeers(ctx context.Context, maddrs []string) (AddPeersResult, error) {
	for i, m := range maddrs {
		if _, err := p2p.ParsePeerAddr(m); err != nil {
			return AddPeersResult{}, fmt.Errorf("%w: maddrs[%d]: %w", ErrInvalidConfig, i, err)
		}
	}
	res := AddPeersResult{ConnectErrs: make([]error, len(maddrs))}
	peers := make([]dht.PeerID, len(maddrs))
	var wg sync.WaitGroup
	for i, m := range maddrs {
		wg.Go(func() {
			id, err := n.host.AddInitialPeer(ctx, m)
			peers[i], res.ConnectErrs[i] = dhtrpc.PeerIDFromP2P(id), err
		})
	}
	wg.Wait()
	answered, err := n.Node.AddInitialPeers(ctx, peers)
	res.Answered = answered
	return res, err
}

// Stats reports the node's and the host's counters.
func (n *libp2pNode) Stats() NodeStats {
	s := n.Node.Stats()
	return NodeStats{
		RoutingTableSize: s.RoutingTable.NodeIDs,
		StoredKeys:       s.StoredKeys,
		CachedKeys:       s.CachedKeys,
		ConnectedPeers:   len(n.host.Peers()),
		RPCs: []RPCStats{
			{Name: "rpc_ping", Sent: s.Sent.Ping, SentFailed: s.Failed.Ping, Received: s.Served.Ping},
			{Name: "rpc_store", Sent: s.Sent.Store, SentFailed: s.Failed.Store, Received: s.Served.Store},
			{Name: "rpc_find", Sent: s.Sent.Find, SentFailed: s.Failed.Find, Received: s.Served.Find},
		},
		Gets:   s.Gets,
		Stores: s.Stores,
	}
}

// Close stops the node, then the host; it gives up waiting when ctx ends (the process is exiting).
func (n *libp2pNode) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- errors.Join(n.Node.Close(), n.host.Close()) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("close node: %w", ctx.Err())
	}
}

func maddrStrings(h *p2p.Host) []string {
	ms := h.VisibleMaddrs()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// durationFromSeconds converts the parent's seconds to a time.Duration, saturating beyond the
// range of time.Duration (about ±292 years: "forever" stays forever, where a plain conversion is
// implementation-defined and gives math.MinInt64 on amd64, turning the setting off); ok is false
// for NaN.
func durationFromSeconds(s float64) (d time.Duration, ok bool) {
	ns := s * float64(time.Second)
	switch {
	case math.IsNaN(ns):
		return 0, false
	case ns >= math.MaxInt64: // float64(math.MaxInt64) is 2^63, itself out of range
		return math.MaxInt64, true
	case ns <= math.MinInt64:
		return math.MinInt64, true
	}
	return time.Duration(ns), true
}
