package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/test/chaos/faults"
	"github.com/hivemind-go/hivemind/worker"
)

// errPartitioned is what a blocked peer's calls fail with.
var errPartitioned = errors.New("faultworker: partitioned")

// netNode is a dht.Node on a p2p.Host whose DHT RPCs pass a gate in both directions: the gate
// refuses blocked peers and adds delays. It is built like worker.NewLibp2pNode and dhtrpc.NewNode
// (which offer no seam for a transport or handler wrapper), from the parameters the chaos suite
// uses: dht.New, the gated handler served, then Bootstrap.
type netNode struct {
	*dht.Node
	host   *p2p.Host
	b58    string
	maddrs []string
}

var _ worker.Node = (*netNode)(nil)

func newNetNode(ctx context.Context, spec worker.NodeSpec, src *faults.Source) (_ worker.Node, err error) {
	c := spec.Config
	hostCfg := p2p.Config{
		IdentityPath:  c.GetIdentityPath(),
		ListenAddrs:   c.GetHostMaddrs(),
		AnnounceAddrs: c.GetAnnounceMaddrs(),
		InitialPeers:  c.GetInitialPeers(),
		Logger:        spec.Logger,
	}
	if c.GetClientMode() {
		hostCfg.DHTMode = p2p.DHTModeClient
	}
	cfg, err := netDHTConfig(spec)
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
	node, err := dht.New(cfg, dhtrpc.PeerIDFromP2P(host.ID()), &gatedTransport{inner: dhtrpc.NewTransport(host), src: src})
	if err != nil {
		return nil, err
	}
	h := &gatedHandler{node: node, src: src}
	if !cfg.ClientMode {
		if err := dhtrpc.Serve(host, h); err != nil {
			return nil, errors.Join(err, node.Close())
		}
	}
	if err := node.Bootstrap(ctx); err != nil {
		dhtrpc.Unserve(host)
		return nil, errors.Join(err, node.Close())
	}
	maddrs := make([]string, 0, len(host.VisibleMaddrs()))
	for _, m := range host.VisibleMaddrs() {
		maddrs = append(maddrs, m.String())
	}
	return &netNode{Node: node, host: host, b58: host.ID().String(), maddrs: maddrs}, nil
}

// netDHTConfig maps the parent's DHT parameters the chaos suite sets onto dht.Config.
func netDHTConfig(spec worker.NodeSpec) (dht.Config, error) {
	c := spec.Config
	p := c.GetDht()
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	cfg := dht.Config{
		NodeID:                spec.NodeID,
		ClientMode:            c.GetClientMode(),
		AllowBootstrapFailure: p.GetAllowBootstrapFailure(),
		LenientBootstrap:      p.GetLenientBootstrap(),
		BootstrapTimeout:      secs(p.GetBootstrapTimeoutSeconds()),
		BucketSize:            int(p.GetBucketSize()),
		NumReplicas:           int(p.GetNumReplicas()),
		WaitTimeout:           secs(p.GetWaitTimeoutSeconds()),
		RefreshInterval:       secs(p.GetRefreshIntervalSeconds()),
		BlacklistTime:         secs(p.GetBlacklistTimeSeconds()),
		CacheNearest:          int(p.GetCacheNearest()),
		DisableCacheLocally:   p.GetDisableCacheLocally(),
		DisableCacheOnStore:   p.GetDisableCacheOnStore(),
		Persister:             spec.Persister,
		Logger:                spec.Logger,
	}
	for i, m := range c.GetInitialPeers() {
		_, id, ok := strings.Cut(m, "/p2p/")
		if !ok {
			return cfg, fmt.Errorf("initial_peers[%d] %q: no /p2p/<peer id>", i, m)
		}
		id, _, _ = strings.Cut(id, "/")
		pid, err := p2p.ParsePeerID(id)
		if err != nil {
			return cfg, fmt.Errorf("initial_peers[%d] %q: %w", i, m, err)
		}
		if p := dhtrpc.PeerIDFromP2P(pid); !containsPeer(cfg.InitialPeers, p) {
			cfg.InitialPeers = append(cfg.InitialPeers, p)
		}
	}
	return cfg, cfg.Validate()
}

func containsPeer(list []dht.PeerID, p dht.PeerID) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// PeerID returns the host's peer ID in both forms.
func (n *netNode) PeerID() (dht.PeerID, string) { return n.Node.PeerID(), n.b58 }

// VisibleMaddrs returns the host's multiaddrs.
func (n *netNode) VisibleMaddrs(context.Context, bool) ([]string, error) { return n.maddrs, nil }

// Stats reports the node's and the host's counters.
func (n *netNode) Stats() worker.NodeStats {
	s := n.Node.Stats()
	return worker.NodeStats{
		RoutingTableSize: s.RoutingTable.NodeIDs,
		StoredKeys:       s.StoredKeys,
		CachedKeys:       s.CachedKeys,
		ConnectedPeers:   len(n.host.Peers()),
		RPCs: []worker.RPCStats{
			{Name: "rpc_ping", Sent: s.Sent.Ping, SentFailed: s.Failed.Ping, Received: s.Served.Ping},
			{Name: "rpc_store", Sent: s.Sent.Store, SentFailed: s.Failed.Store, Received: s.Served.Store},
			{Name: "rpc_find", Sent: s.Sent.Find, SentFailed: s.Failed.Find, Received: s.Served.Find},
		},
	}
}

// Close unregisters the handlers, closes the node, then the host; it gives up waiting when ctx ends.
func (n *netNode) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		dhtrpc.Unserve(n.host)
		done <- errors.Join(n.Node.Close(), n.host.Close())
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("close node: %w", ctx.Err())
	}
}

// gate applies the fault points to one RPC with peer: a blocked peer is refused, a delay is waited.
func gate(ctx context.Context, f faults.Faults, peer dht.PeerID, delay time.Duration) error {
	if len(f.Blocked) > 0 {
		if pid, err := dhtrpc.PeerIDToP2P(peer); err == nil && f.IsBlocked(pid.String()) {
			return fmt.Errorf("%w from %s", errPartitioned, pid)
		}
	}
	return sleep(ctx, delay)
}

// gatedTransport is dhtrpc's Transport behind the gate.
type gatedTransport struct {
	inner dht.Transport
	src   *faults.Source
}

func (t *gatedTransport) check(ctx context.Context, peer dht.PeerID) error {
	f := t.src.Get()
	if err := gate(ctx, f, peer, f.LinkDelay); err != nil {
		return fmt.Errorf("%w: %w", dht.ErrNoResponse, err)
	}
	return nil
}

func (t *gatedTransport) Ping(ctx context.Context, peer dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if err := t.check(ctx, peer); err != nil {
		return nil, err
	}
	return t.inner.Ping(ctx, peer, req)
}

func (t *gatedTransport) Store(ctx context.Context, peer dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if err := t.check(ctx, peer); err != nil {
		return nil, err
	}
	return t.inner.Store(ctx, peer, req)
}

func (t *gatedTransport) Find(ctx context.Context, peer dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if err := t.check(ctx, peer); err != nil {
		return nil, err
	}
	return t.inner.Find(ctx, peer, req)
}

// gatedHandler serves the node behind the gate.
type gatedHandler struct {
	node *dht.Node
	src  *faults.Source
}

func (h *gatedHandler) gate(ctx context.Context, from dht.PeerID) error {
	f := h.src.Get()
	return gate(ctx, f, from, f.HandlerDelay)
}

func (h *gatedHandler) HandlePing(ctx context.Context, from dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if err := h.gate(ctx, from); err != nil {
		return nil, err
	}
	return h.node.HandlePing(ctx, from, req)
}

func (h *gatedHandler) HandleStore(ctx context.Context, from dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if err := h.gate(ctx, from); err != nil {
		return nil, err
	}
	return h.node.HandleStore(ctx, from, req)
}

func (h *gatedHandler) HandleFind(ctx context.Context, from dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if err := h.gate(ctx, from); err != nil {
		return nil, err
	}
	return h.node.HandleFind(ctx, from, req)
}
