package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// This file assembles the parts of a host that make it usable behind NATs, as p2pd's flags do
// (hivemind's use_relay, use_auto_relay, trusted_relays, auto_nat, nat_port_map, force_reachability
// and no_listen), and reports what they see (NATStatus).
//
//   - relay transport (Config.DisableRelay off): circuit v2, dialling relayed addresses and accepting
//     relayed connections; streams may use limited connections (see allowLimited);
//   - relay service (and not DisableRelayService): relays for any peer, with Config.Relay's limits
//     (p2pd's), whatever the host's reachability (p2pd starts one unconditionally);
//   - AutoNAT v1: the client always (reachability for auto-relay and DHTModeAuto), the service for
//     others unless DisableAutoNAT (it dials back through a swarm of its own, with another identity,
//     as libp2p.New builds it); forced by Config.Reachability;
//   - hole punching (DCUtR) unless DisableAutoNAT: a peer that reached this host through a relay is
//     asked to punch a direct connection, which then carries the streams (the swarm prefers direct
//     connections), and asked again a few times when that failed (nat_holepunch.go);
//   - auto-relay (AutoRelay): candidates are TrustedRelays, or the initial peers, then the peers
//     kad knows closest to this host; a relay that refused or failed is retried after relayBackoff;
//   - NAT port mapping (NATPortMap): libp2p's UPnP / NAT-PMP manager.

const (
	// relayBackoff is how long auto-relay waits before asking a relay that failed again. libp2p's
	// default is an hour; a swarm with one or two relays (a bootstrap node) would stay unreachable
	// that long after its relay restarts.
	relayBackoff = time.Minute
	// relayMinCandidates: reserve as soon as one candidate is known (they come from the operator or
	// the initial peers first), instead of libp2p's four or its 3-minute boot delay.
	relayMinCandidates = 1
)

// validateNAT reports the invalid NAT fields and combinations through bad.
func (c Config) validateNAT(bad func(field, format string, args ...any)) {
	c.Relay.validate(bad)
	for i, s := range c.TrustedRelays {
		if _, err := parseInitialPeer(s); err != nil {
			bad(fmt.Sprintf("TrustedRelays[%d]", i), "%q: %v", s, err)
		}
	}
	if len(c.TrustedRelays) > 0 && !c.AutoRelay {
		bad("TrustedRelays", "set without AutoRelay (trusted relays are auto-relay's candidates)")
	}
	if c.AutoRelay && c.DisableRelay {
		bad("AutoRelay", "needs the relay transport, which DisableRelay turns off")
	}
	if c.AutoRelay && len(c.TrustedRelays) == 0 && len(c.InitialPeers) == 0 {
		bad("AutoRelay", "has no relay to start from: give TrustedRelays or InitialPeers")
	}
	if c.NoListen && len(c.ListenAddrs) > 0 {
		bad("NoListen", "set together with ListenAddrs (%d); use one of them", len(c.ListenAddrs))
	}
}

// natParts are the NAT-traversal parts of a host that outlive its construction.
type natParts struct {
	cfg       Config // defaults applied
	autoNAT   autonat.AutoNAT
	relay     *relayv2.Relay
	autoRelay *autorelay.AutoRelay
	holePunch *holepunch.Service
	retrier   *holePunchRetrier
	relayed   relayStats
	punched   holePunchStats
}

// close stops the services the basic host does not own (hole punching and its retries,
// auto-relay, the relay service). It runs before the host closes.
func (n *natParts) close() error {
	var errs []error
	if n.retrier != nil {
		n.retrier.stop()
	}
	if n.holePunch != nil {
		errs = append(errs, n.holePunch.Close())
	}
	if n.retrier != nil {
		n.retrier.wait()
	}
	if n.autoRelay != nil {
		errs = append(errs, n.autoRelay.Close())
	}
	if n.relay != nil {
		errs = append(errs, n.relay.Close())
	}
	return errors.Join(errs...)
}

// newAutoNATDialer builds the swarm the AutoNAT service dials other peers back with: its own
// identity and peerstore, the host's TCP (and QUIC) transports and security, no listener, no
// black-hole detection (libp2p.New builds the same). The caller closes it after the host.
func newAutoNATDialer(cfg Config, rm network.ResourceManager) (_ *swarm.Swarm, closers []func() error, err error) {
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				err = errors.Join(err, closers[i]())
			}
			closers = nil
		}
	}()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, ps.Close)
	if err := errors.Join(ps.AddPrivKey(id, key), ps.AddPubKey(id, key.GetPublic())); err != nil {
		return nil, closers, err
	}
	sw, err := swarm.NewSwarm(id, ps, eventbus.NewBus(),
		swarm.WithResourceManager(rm),
		swarm.WithDialRanker(swarm.NoDelayDialRanker),
		swarm.WithUDPBlackHoleSuccessCounter(nil),
		swarm.WithIPv6BlackHoleSuccessCounter(nil),
	)
	if err != nil {
		return nil, closers, err
	}
	closers = append(closers, sw.Close)
	_, more, err := addTransports(sw, key, rm, wantsQUIC(cfg.ListenAddrs))
	closers = append(closers, more...)
	if err != nil {
		return nil, closers, err
	}
	// The swarm closes first, then what it used.
	slices.Reverse(closers)
	return sw, closers, nil
}

// startAutoRelay starts auto-relay on h (see Config.AutoRelay).
func startAutoRelay(cfg Config, h host.Host, kad *kaddht.IpfsDHT) (*autorelay.AutoRelay, error) {
	static, err := relayCandidates(cfg)
	if err != nil {
		return nil, err
	}
	ar, err := autorelay.NewAutoRelay(h,
		autorelay.WithPeerSource(relayPeerSource(static, h, kad)),
		autorelay.WithMinCandidates(relayMinCandidates),
		autorelay.WithBackoff(relayBackoff),
	)
	if err != nil {
		return nil, fmt.Errorf("p2p: auto-relay: %w", err)
	}
	ar.Start()
	return ar, nil
}

// relayCandidates are auto-relay's first candidates: the trusted relays, or else the initial peers
// (p2pd's default), one AddrInfo per peer.
func relayCandidates(cfg Config) ([]peer.AddrInfo, error) {
	if len(cfg.TrustedRelays) > 0 {
		return parsePeerList("TrustedRelays", cfg.TrustedRelays) // validated by Config.Validate
	}
	return parsePeerList("InitialPeers", cfg.InitialPeers)
}

// relayPeerSource feeds auto-relay its candidates: static first, then the peers the kad DHT finds
// closest to this host that have a public address (as p2pd's relay discovery does, but for that
// filter). Each call sends at most num and closes the channel when done or when ctx ends.
func relayPeerSource(static []peer.AddrInfo, h host.Host, kad *kaddht.IpfsDHT) autorelay.PeerSource {
	return func(ctx context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo)
		go func() {
			defer close(out)
			sent := 0
			send := func(info peer.AddrInfo) bool {
				if sent >= num {
					return false
				}
				select {
				case out <- info:
					sent++
					return true
				case <-ctx.Done():
					return false
				}
			}
			for _, info := range static {
				if !send(info) {
					return
				}
			}
			closest, err := kad.GetClosestPeers(ctx, string(h.ID()))
			if err != nil {
				return // usually an empty routing table at start; the next call tries again
			}
			for _, p := range closest {
				if p == h.ID() || slices.ContainsFunc(static, func(s peer.AddrInfo) bool { return s.ID == p }) {
					continue
				}
				addrs := h.Peerstore().Addrs(p)
				if !hasDirectPublicAddr(addrs) {
					continue // a peer behind a NAT would relay for nobody outside
				}
				if !send(peer.AddrInfo{ID: p, Addrs: addrs}) {
					return
				}
			}
		}()
		return out
	}
}

// hasDirectPublicAddr reports whether addrs hold a public address that is not itself through a
// relay: what a discovered relay candidate needs to relay for peers outside its own network.
func hasDirectPublicAddr(addrs []ma.Multiaddr) bool {
	return slices.ContainsFunc(addrs, func(a ma.Multiaddr) bool { return !IsRelayedAddr(a) && manet.IsPublicAddr(a) })
}

// announceFactory makes the host announce announce instead of its listen addresses, plus the
// /p2p-circuit addresses auto-relay gives it (p2pd's factory drops those too; a node behind a NAT
// with announced addresses would otherwise lose the relay it reserved).
func announceFactory(announce []ma.Multiaddr) func([]ma.Multiaddr) []ma.Multiaddr {
	return func(addrs []ma.Multiaddr) []ma.Multiaddr {
		out := slices.Clone(announce)
		for _, a := range addrs {
			if IsRelayedAddr(a) {
				out = append(out, a)
			}
		}
		return out
	}
}

// closeInOrder returns a func that calls every closer, in order, and joins their errors.
func closeInOrder(closers []func() error) func() error {
	return func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
}
