package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// initialPeerTag protects connections to the initial peers from the connection manager's trimming.
const initialPeerTag = "hivemind-initial-peer"

// Host is a libp2p host speaking hivemind's wire protocol: it serves handlers registered under hivemind
// handle names and calls them on other peers (Go or Python hivemind/p2pd alike). It runs a Kademlia DHT
// (/ipfs/kad/1.0.0) for peer routing only, so a call to a peer known by its ID alone resolves its
// addresses, as p2pd's routed host does.
//
// All methods are safe for concurrent use. Close releases everything New acquired.
type Host struct {
	cfg Config // defaults applied
	log *slog.Logger
	lh  host.Host
	kad *kaddht.IpfsDHT // nil when wrapping a host that has no DHT (mocknet tests)
	// resolver is lh's peer routing (resolve.go); nil when wrapping a host without one (mocknet).
	resolver *resolver
	// nat are the NAT-traversal parts (options_nat.go); nil when wrapping a host without them.
	nat *natParts

	// ctx is the host's lifetime: every handler's context derives from it and Close cancels it. It is
	// stored because handlers outlive the calls that registered them.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	handlers map[string]struct{} // registered handle names
	inflight sync.WaitGroup      // streams being served

	closeOnce sync.Once
	closeErr  error
}

// New builds and starts a host from cfg: identity, listeners, transports (TCP always, QUIC when a quic-v1
// listen address is given, relay), Noise and TLS, yamux, the resource and connection managers, the
// NAT-traversal services hivemind's p2pd runs (relay service, AutoNAT, hole punching, auto-relay when
// asked), and the kad DHT as routing (see newLibp2pHost for what runs and what does not); then it connects to
// cfg.InitialPeers concurrently and returns once the peers it reached are usable for peer routing
// (identified, and in the kad routing table when they serve kad), so the first call to a peer
// known by its ID alone can be resolved through them. It fails when cfg is invalid,
// when the identity is unusable, or when initial peers are given and none of them can be reached
// (ErrBootstrap, naming each peer and why); partial failures are logged. ctx bounds the bootstrap only.
func New(ctx context.Context, cfg Config) (_ *Host, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	key, err := loadKey(cfg)
	if err != nil {
		return nil, err
	}
	rm, err := newResourceManager(cfg.Limits, cfg.MaxMessageSize)
	if err != nil {
		return nil, err
	}
	cm, err := newConnManager(cfg.Limits)
	if err != nil {
		return nil, errors.Join(err, rm.Close())
	}
	lh, res, nat, err := newLibp2pHost(cfg, key, rm, cm)
	if err != nil {
		return nil, fmt.Errorf("p2p: start libp2p host: %w", err)
	}
	h := wrapHost(lh, res.kad, cfg)
	h.resolver, h.nat = res, nat
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Close())
		}
	}()
	if err := h.connectInitialPeers(ctx, cfg.InitialPeers); err != nil {
		return nil, err
	}
	h.log.Info("p2p host started", "peer_id", h.ID().String(), "addrs", multiaddrStrings(h.VisibleMaddrs()))
	return h, nil
}

// wrapHost makes a Host around an existing libp2p host (New's own, or a mocknet host in tests).
func wrapHost(lh host.Host, kad *kaddht.IpfsDHT, cfg Config) *Host {
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{
		cfg:      cfg,
		log:      cfg.Logger.With("peer_id", lh.ID().String()),
		lh:       lh,
		kad:      kad,
		ctx:      ctx,
		cancel:   cancel,
		handlers: make(map[string]struct{}),
	}
}

func loadKey(cfg Config) (crypto.PrivKey, error) {
	switch {
	case cfg.PrivateKey != nil:
		return cfg.PrivateKey, nil
	case cfg.IdentityPath != "":
		key, created, err := LoadOrCreateIdentity(cfg.IdentityPath)
		if err != nil {
			return nil, err
		}
		if created {
			cfg.Logger.Info("created a new identity file", "path", cfg.IdentityPath)
		}
		return key, nil
	default:
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("%w: generate ed25519 key: %w", ErrIdentity, err)
		}
		return key, nil
	}
}

func wantsQUIC(listen []string) bool {
	for _, s := range listen {
		if strings.Contains(s, "/quic-v1") {
			return true
		}
	}
	return false
}

// connectInitialPeers connects to every initial peer concurrently within cfg.BootstrapTimeout (see
// connectInitial). It fails only when peers are given and none is reached.
func (h *Host) connectInitialPeers(ctx context.Context, addrs []string) error {
	if len(addrs) == 0 {
		return nil
	}
	infos, err := parsePeerList("InitialPeers", addrs) // validated by Config.Validate
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.BootstrapTimeout)
	defer cancel()
	errs := make([]error, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		wg.Go(func() { errs[i] = h.connectInitial(ctx, info) })
	}
	wg.Wait()
	var failures []error
	for i, err := range errs {
		if err != nil {
			failures = append(failures, fmt.Errorf("initial peer %s: %w", infos[i].ID, err))
			h.log.Warn("cannot reach initial peer", "peer", infos[i].ID.String(), "addrs", multiaddrStrings(infos[i].Addrs), "err", err)
		}
	}
	if len(failures) == len(infos) {
		return fmt.Errorf("%w: %w", ErrBootstrap, errors.Join(failures...))
	}
	return nil
}

// connectInitial connects to an initial peer: its addresses are kept permanently in the peerstore
// and, once connected, the connection is protected from trimming and the peer made usable for
// peer routing (routingReady).
func (h *Host) connectInitial(ctx context.Context, info peer.AddrInfo) error {
	if info.ID == h.ID() {
		return errors.New("is this host itself")
	}
	h.lh.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
	if err := h.lh.Connect(ctx, info); err != nil {
		return err
	}
	h.Protect(info.ID, initialPeerTag)
	h.routingReady(ctx, info.ID)
	return nil
}

// routingReady makes a connected peer usable for peer routing before bootstrap goes on: it waits
// (bounded) for the peer's identify exchange and, when the peer serves the kad DHT, adds it to kad's
// routing table and bootstraps kad from it. Without this the table fills only asynchronously (kad
// admits a peer after identify and a query of its own), and the node's first lookups, which dial
// the peers named in rpc_find answers by their IDs alone, would find kad's table empty. A peer that
// does not serve kad is only logged: peer routing then relies on the resolver's other sources.
func (h *Host) routingReady(ctx context.Context, p PeerID) {
	if h.resolver == nil {
		return
	}
	if h.resolver.seed(ctx, []peer.ID{p}) == 0 {
		h.log.Debug("initial peer is not a kad DHT server; it cannot resolve peer IDs for this host", "peer", p.String())
		return
	}
	if err := h.kad.Bootstrap(h.ctx); err != nil {
		h.log.Warn("kad dht bootstrap failed", "err", err)
	}
}

// NoteReferrals records that referrer named peers, as a hivemind rpc_find answer names peers by
// their IDs without addresses. When one of them is later dialled by its ID alone and the kad DHT
// finds no address for it, the host asks referrer, which knows it, having just named it (see
// resolver). The host keeps the last few referrers of each of the last 4096 peers noted; this host
// and referrer itself are skipped. A host without peer routing (a mocknet test host) ignores it.
func (h *Host) NoteReferrals(referrer PeerID, peers []PeerID) {
	if h.resolver == nil {
		return
	}
	self := h.ID()
	h.resolver.refs.note(referrer, slices.DeleteFunc(slices.Clone(peers), func(p PeerID) bool { return p == self }))
}

// ParsePeerAddr returns the peer ID of a full multiaddr ending in /p2p/<peer id> with a transport
// address before it (the form of Config.InitialPeers), or why it is not one (wrapping
// ErrInvalidConfig).
func ParsePeerAddr(addr string) (PeerID, error) {
	info, err := parseInitialPeer(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidConfig, addr, err)
	}
	return info.ID, nil
}

// AddInitialPeer connects to addr (see ParsePeerAddr) as New connects to each of Config.InitialPeers:
// the address is kept permanently in the peerstore, so that the peer can be reached again later by
// its ID alone, and the connection is protected from trimming. The attempt is bounded by ctx and
// Config.BootstrapTimeout. It returns the peer's ID whenever addr parses, also when the connection
// fails; a malformed addr wraps ErrInvalidConfig.
func (h *Host) AddInitialPeer(ctx context.Context, addr string) (PeerID, error) {
	info, err := parseInitialPeer(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidConfig, addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.BootstrapTimeout)
	defer cancel()
	if err := h.connectInitial(ctx, *info); err != nil {
		return info.ID, fmt.Errorf("p2p: connect %s: %w", info.ID, err)
	}
	return info.ID, nil
}

// ID returns the host's peer ID.
func (h *Host) ID() PeerID { return h.lh.ID() }

// Addrs returns the addresses the host announces (its listen addresses, or Config.AnnounceAddrs),
// with the /p2p-circuit addresses of its relay reservations while it is private (Config.AutoRelay).
func (h *Host) Addrs() []ma.Multiaddr { return h.lh.Addrs() }

// VisibleMaddrs returns the announced addresses with /p2p/<peer id> appended: what other peers pass as
// initial peers (hivemind's get_visible_maddrs). A host that announces nothing (Config.NoListen)
// has none.
func (h *Host) VisibleMaddrs() []ma.Multiaddr {
	if len(h.lh.Addrs()) == 0 {
		return nil
	}
	out, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.lh.Addrs()})
	if err != nil { // only for an invalid peer ID, which a running host cannot have
		h.log.Error("cannot build visible multiaddrs", "err", err)
		return nil
	}
	return out
}

// Connect dials a full multiaddr ending in /p2p/<peer id> and returns that peer's ID. The address is
// kept in the peerstore for the peerstore's usual temporary TTL.
func (h *Host) Connect(ctx context.Context, addr string) (PeerID, error) {
	info, err := parseInitialPeer(addr)
	if err != nil {
		return "", fmt.Errorf("p2p: connect %q: %w", addr, err)
	}
	if err := h.lh.Connect(allowLimited(ctx), *info); err != nil {
		return "", fmt.Errorf("p2p: connect %s: %w", info.ID, err)
	}
	return info.ID, nil
}

// Peers returns the peers the host currently has connections to.
func (h *Host) Peers() []PeerID { return h.lh.Network().Peers() }

// Protect shields the connections to p from the connection manager's trimming until every tag it was
// protected with is removed (e.g. while p is in the hivemind routing table).
func (h *Host) Protect(p PeerID, tag string) { h.lh.ConnManager().Protect(p, tag) }

// Unprotect removes one protection tag from p and reports whether p is still protected by another.
func (h *Host) Unprotect(p PeerID, tag string) bool { return h.lh.ConnManager().Unprotect(p, tag) }

// RemoveHandler unregisters the handler for name; calls already running finish. Unknown names are ignored.
func (h *Host) RemoveHandler(name string) {
	h.mu.Lock()
	delete(h.handlers, name)
	h.mu.Unlock()
	h.lh.RemoveStreamHandler(protocol.ID(name))
}

// Close stops the host: it cancels every running handler's context, unregisters the handlers, closes
// the kad DHT and the libp2p host (every connection and stream), and waits for the handlers to return.
// Handlers must return once their context is cancelled. Close is idempotent.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		names := make([]string, 0, len(h.handlers))
		for name := range h.handlers {
			names = append(names, name)
		}
		clear(h.handlers)
		h.mu.Unlock()
		h.cancel()
		for _, name := range names {
			h.lh.RemoveStreamHandler(protocol.ID(name))
		}
		var errs []error
		if h.kad != nil {
			if err := h.kad.Close(); err != nil {
				errs = append(errs, fmt.Errorf("p2p: close kad dht: %w", err))
			}
		}
		if err := h.lh.Close(); err != nil {
			errs = append(errs, fmt.Errorf("p2p: close libp2p host: %w", err))
		}
		h.inflight.Wait()
		h.closeErr = errors.Join(errs...)
	})
	return h.closeErr
}

func multiaddrStrings(ms []ma.Multiaddr) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
