package p2p

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	routed "github.com/libp2p/go-libp2p/p2p/host/routed"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	quicgo "github.com/quic-go/quic-go"
	"golang.org/x/crypto/hkdf"
)

// newLibp2pHost assembles the libp2p host from its parts: what libp2p.New builds for the options p2pd
// and hivemind use, and nothing else.
//
//   - transports: TCP; QUIC only when a /quic-v1 listen address is given; the circuit v2 relay
//     transport unless Config.DisableRelay; no listener at all with Config.NoListen;
//   - security Noise then TLS (a peer started with tls=False speaks only Noise), muxer yamux;
//   - identify (with observed-address discovery) and ping, served by the basic host;
//   - NAT traversal as p2pd runs it (options_nat.go): the relay service with p2pd's limits,
//     AutoNAT v1 (client always, service unless Config.DisableAutoNAT; forced by
//     Config.Reachability), hole punching, auto-relay when asked, NAT port mapping when asked;
//   - the kad DHT (/ipfs/kad/1.0.0) for peer routing, through a resolver (resolve.go) that also asks
//     the peers that named a peer, as the routing of a routed host;
//   - no metrics, no AutoNAT v2.
//
// libp2p.New itself is not used: its package links the WebRTC, WebTransport and WebSocket transports
// and the fx dependency injector into every binary that imports it, whether they are used or not, which
// took a third of a worker process's idle RSS (the executable's pages touched by package initialisation)
// and more CPU at start.
//
// rm and cm are owned by the returned host, and released on error. The resolver (and its kad DHT)
// is the host's routing; the host does not close it: Host.Close closes the kad DHT first.
func newLibp2pHost(cfg Config, key crypto.PrivKey, rm network.ResourceManager, cm connmgr.ConnManager) (_ host.Host, _ *resolver, _ *natParts, err error) {
	// Everything built so far, released in reverse order on error. Once the basic host exists it owns
	// the swarm, the peerstore and both managers.
	var undo []func() error
	defer func() {
		if err != nil {
			errs := []error{err}
			for i := len(undo) - 1; i >= 0; i-- {
				errs = append(errs, undo[i]())
			}
			err = errors.Join(errs...)
		}
	}()
	undo = append(undo, rm.Close, cm.Close)

	listen, err := parseMultiaddrs("ListenAddrs", cfg.ListenAddrs)
	if err != nil {
		return nil, nil, nil, err
	}
	announce, err := parseMultiaddrs("AnnounceAddrs", cfg.AnnounceAddrs)
	if err != nil {
		return nil, nil, nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, nil, nil, err
	}
	undo = append(undo, ps.Close)
	if err := errors.Join(ps.AddPrivKey(id, key), ps.AddPubKey(id, key.GetPublic())); err != nil {
		return nil, nil, nil, err
	}
	bus := eventbus.NewBus()
	sw, err := swarm.NewSwarm(id, ps, bus,
		swarm.WithResourceManager(rm),
		// libp2p's default black-hole detectors: stop dialling UDP (or IPv6) when 95 of 100 dials fail.
		swarm.WithUDPBlackHoleSuccessCounter(&swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"}),
		swarm.WithIPv6BlackHoleSuccessCounter(&swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"}),
	)
	if err != nil {
		return nil, nil, nil, err
	}
	undo = append(undo, sw.Close)
	upgrader, tptClosers, err := addTransports(sw, key, rm, wantsQUIC(cfg.ListenAddrs))
	undo = append(undo, tptClosers...)
	if err != nil {
		return nil, nil, nil, err
	}

	observed, err := observedaddrs.NewManager(bus, sw)
	if err != nil {
		return nil, nil, nil, err
	}
	undo = append(undo, observed.Close)
	nat := &natParts{cfg: cfg}
	opts := &bhost.HostOpts{
		EventBus:             bus,
		ConnManager:          cm,
		EnablePing:           true,
		UserAgent:            cfg.UserAgent,
		ObservedAddrsManager: observed,
	}
	if len(announce) > 0 {
		opts.AddrsFactory = announceFactory(announce)
	}
	if cfg.NATPortMap {
		opts.NATManager = bhost.NewNATManager
	}
	bh, err := bhost.NewHost(sw, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	// The basic host now closes the swarm, the peerstore and both managers.
	undo = append([]func() error{bh.Close, observed.Close}, tptClosers...)
	undo = append(undo, nat.close)
	if !cfg.DisableAutoNAT {
		if nat.holePunch, err = newHolePunchService(bh, observed, announce, &nat.punched); err != nil {
			return nil, nil, nil, fmt.Errorf("p2p: hole punching: %w", err)
		}
	}
	if !cfg.DisableRelay {
		if err := circuit.AddTransport(bh, upgrader); err != nil {
			return nil, nil, nil, err
		}
	}

	// Default /ipfs prefix, no bootstrap peers (never joins the public IPFS DHT on its own), no
	// routing-table or address filters: as p2pd runs it.
	kad, err := kaddht.New(bh, kaddht.Mode(kadMode(cfg.DHTMode)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("p2p: kad dht: %w", err)
	}
	undo = append(undo, kad.Close)

	// Listening succeeds when at least one address could be bound, as in libp2p.New.
	if err := sw.Listen(listen...); err != nil {
		return nil, nil, nil, err
	}
	observed.Start(sw)
	bh.Start()

	anOpts := autonatOptions(cfg, bh, announce)
	closers := []func() error{observed.Close}
	closers = append(closers, tptClosers...)
	if !cfg.DisableAutoNAT {
		dialer, dialerClosers, err := newAutoNATDialer(cfg, rm)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("p2p: autonat dialer: %w", err)
		}
		undo = append(undo, closeInOrder(dialerClosers))
		closers = append(closers, dialerClosers...)
		anOpts = append(anOpts, autonat.EnableService(dialer))
	}
	an, err := autonat.New(bh, anOpts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("p2p: autonat: %w", err)
	}
	bh.SetAutoNat(an) // closed by the basic host
	nat.autoNAT = an

	if nat.holePunch != nil {
		nat.retrier = startHolePunchRetrier(bh, nat.holePunch)
	}
	if !cfg.DisableRelay && !cfg.DisableRelayService {
		if nat.relay, err = startRelayService(bh, cfg.Relay, &nat.relayed); err != nil {
			return nil, nil, nil, fmt.Errorf("p2p: relay service: %w", err)
		}
	}
	if cfg.AutoRelay {
		if nat.autoRelay, err = startAutoRelay(cfg, bh, kad); err != nil {
			return nil, nil, nil, err
		}
	}

	res := newResolver(bh, bh.IDService(), kad, cfg.Logger.With("peer_id", id.String()))
	return &closableHost{RoutedHost: routed.Wrap(bh, res), before: nat.close, after: closers}, res, nat, nil
}

// addTransports adds TCP, and QUIC when withQUIC, to sw: secured with key by Noise then TLS (Noise
// first, as p2pd proposes it), muxed by yamux. It returns the upgrader (the relay transport uses it
// too) and what to close once sw is closed, also on error.
func addTransports(sw *swarm.Swarm, key crypto.PrivKey, rm network.ResourceManager, withQUIC bool) (transport.Upgrader, []func() error, error) {
	muxers := []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	noiseTpt, err := noise.New(noise.ID, key, muxers)
	if err != nil {
		return nil, nil, err
	}
	tlsTpt, err := tls.New(tls.ID, key, muxers)
	if err != nil {
		return nil, nil, err
	}
	upgrader, err := tptu.New([]sec.SecureTransport{noiseTpt, tlsTpt}, muxers, nil, rm, nil)
	if err != nil {
		return nil, nil, err
	}
	tcpTpt, err := tcp.NewTCPTransport(upgrader, rm, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := sw.AddTransport(tcpTpt); err != nil {
		return nil, nil, err
	}
	if !withQUIC {
		return upgrader, nil, nil
	}
	quicConns, err := newQUICConnManager(key, rm)
	if err != nil {
		return nil, nil, err
	}
	closers := []func() error{quicConns.Close}
	quicTpt, err := quic.NewTransport(key, quicConns, nil, nil, rm)
	if err != nil {
		return nil, closers, err
	}
	if err := sw.AddTransport(quicTpt); err != nil {
		return nil, closers, err
	}
	return upgrader, closers, nil
}

// closableHost is the routed host plus what the basic host does not close itself: before runs
// first (services running on the host), after once the host is closed.
type closableHost struct {
	*routed.RoutedHost
	before func() error
	after  []func() error
}

// Close closes the services on the host, the host (swarm, peerstore, managers, its own services),
// then the parts outside it.
func (h *closableHost) Close() error {
	errs := []error{h.before(), h.RoutedHost.Close()}
	for _, c := range h.after {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func kadMode(m DHTMode) kaddht.ModeOpt {
	switch m {
	case DHTModeClient:
		return kaddht.ModeClient
	case DHTModeAuto:
		return kaddht.ModeAuto
	default:
		return kaddht.ModeServer
	}
}

// autonatOptions probes only public addresses (the announced ones when AnnounceAddrs is set), and
// forces the reachability Config.Reachability names.
func autonatOptions(cfg Config, bh *bhost.BasicHost, announce []ma.Multiaddr) []autonat.Option {
	addrs := func() []ma.Multiaddr {
		if len(announce) > 0 {
			return slices.DeleteFunc(slices.Clone(announce), func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
		}
		return slices.DeleteFunc(bh.AllAddrs(), func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
	}
	opts := []autonat.Option{autonat.UsingAddresses(addrs)}
	switch cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, autonat.WithReachability(network.ReachabilityPublic))
	case ReachabilityPrivate:
		opts = append(opts, autonat.WithReachability(network.ReachabilityPrivate))
	}
	return opts
}

// newQUICConnManager is libp2p's QUIC connection manager as libp2p.New builds it: stateless-reset and
// token keys derived from the identity, every inbound connection charged to the resource manager.
func newQUICConnManager(key crypto.PrivKey, rm network.ResourceManager) (*quicreuse.ConnManager, error) {
	var resetKey quicgo.StatelessResetKey
	if err := deriveQUICKey(key, "libp2p quic stateless reset key", resetKey[:]); err != nil {
		return nil, err
	}
	var tokenKey quicgo.TokenGeneratorKey
	if err := deriveQUICKey(key, "libp2p quic token generator key", tokenKey[:]); err != nil {
		return nil, err
	}
	return quicreuse.NewConnManager(resetKey, tokenKey,
		quicreuse.ConnContext(func(ctx context.Context, info *quicgo.ClientInfo) (context.Context, error) {
			// Even without a multiaddr, the resource manager decides.
			addr, err := quicreuse.ToQuicMultiaddr(info.RemoteAddr, quicgo.Version1)
			if err != nil {
				addr = nil
			}
			scope, err := rm.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(func(addr net.Addr) bool { return rm.VerifySourceAddress(addr) }),
	)
}

// deriveQUICKey fills out with HKDF-SHA256 of the private key's raw bytes, as libp2p derives its QUIC
// keys (so they survive restarts with the same identity).
func deriveQUICKey(key crypto.PrivKey, info string, out []byte) error {
	raw, err := key.Raw()
	if err != nil {
		return err
	}
	_, err = io.ReadFull(hkdf.New(sha256.New, raw, nil, []byte(info)), out)
	return err
}

func parseMultiaddrs(field string, ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, len(ss))
	for i, s := range ss {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %w", ErrInvalidConfig, field, i, err)
		}
		out[i] = m
	}
	return out, nil
}
