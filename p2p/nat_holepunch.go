package p2p

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
)

// Hole punching (DCUtR). libp2p's service tries once, when a peer reaches this host through a
// relay; the peer must be ready for it then, which a peer that has just started (and dialled this
// host at once, as a DHT node bootstrapping does) is not yet: it registers the protocol only once
// it has learnt its public address. The connection then stays relayed for its whole life. So this
// host tries again, a few times, with a growing pause, while a peer it was reached by through a
// relay has no direct connection.
const (
	// holePunchRetryFirst is the pause before the first retry; each retry doubles it.
	holePunchRetryFirst = 10 * time.Second
	// holePunchRetries bounds the retries per peer (a peer behind a NAT that cannot be punched
	// costs at most these).
	holePunchRetries = 4
	// holePunchCloseWait bounds how long Close waits for a retry under way.
	holePunchCloseWait = 5 * time.Second
)

// newHolePunchService starts libp2p's hole-punching service on bh, punching from the host's
// public addresses: the direct ones (or the announced ones), and those its peers observe it at,
// even by one peer (the basic host's HolePunchAddrs does the same; building the service here
// lets the host retry).
func newHolePunchService(bh *bhost.BasicHost, observed *observedaddrs.Manager, announce []ma.Multiaddr, tracer holepunch.EventTracer) (*holepunch.Service, error) {
	addrs := func() []ma.Multiaddr {
		out := bh.AllAddrs()
		if len(announce) > 0 {
			out = slices.Clone(announce)
		}
		out = ma.Unique(append(out, observed.Addrs(1)...))
		return slices.DeleteFunc(out, func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
	}
	return holepunch.NewService(bh, bh.IDService(), addrs, holepunch.WithTracer(tracer))
}

// holePunchRetrier retries hole punches (see above). run is its one goroutine; it owns tries.
type holePunchRetrier struct {
	h   *bhost.BasicHost
	hps *holepunch.Service

	cancel context.CancelFunc
	done   chan struct{}
	punchs sync.WaitGroup // DirectConnect calls under way
}

// punchTry is what the retrier remembers of one peer.
type punchTry struct {
	retries int
	next    time.Time
}

func startHolePunchRetrier(h *bhost.BasicHost, hps *holepunch.Service) *holePunchRetrier {
	ctx, cancel := context.WithCancel(context.Background())
	r := &holePunchRetrier{h: h, hps: hps, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r
}

func (r *holePunchRetrier) run(ctx context.Context) {
	defer close(r.done)
	tries := map[peer.ID]*punchTry{}
	tick := time.NewTicker(holePunchRetryFirst / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.sweep(ctx, tries, now)
		}
	}
}

// sweep starts the retries that are due and forgets the peers that no longer need one.
func (r *holePunchRetrier) sweep(ctx context.Context, tries map[peer.ID]*punchTry, now time.Time) {
	ready := slices.Contains(r.h.Mux().Protocols(), holepunch.Protocol) // this host can punch now
	waiting := map[peer.ID]bool{}
	for _, p := range r.h.Network().Peers() {
		if !reachedThroughRelayOnly(r.h.Network().ConnsToPeer(p)) {
			continue
		}
		waiting[p] = true
		t, ok := tries[p]
		if !ok {
			tries[p] = &punchTry{next: now.Add(holePunchRetryFirst)}
			continue
		}
		if !ready || t.retries >= holePunchRetries || now.Before(t.next) {
			continue
		}
		if dcutr, _ := r.h.Peerstore().SupportsProtocols(p, holepunch.Protocol); len(dcutr) == 0 {
			t.next = now.Add(holePunchRetryFirst) // not identified, or not ready yet
			continue
		}
		t.retries++
		t.next = now.Add(holePunchRetryFirst << t.retries)
		r.punchs.Go(func() {
			if ctx.Err() == nil {
				_ = r.hps.DirectConnect(p) // counted by the service's tracer
			}
		})
	}
	for p := range tries {
		if !waiting[p] {
			delete(tries, p)
		}
	}
}

// reachedThroughRelayOnly: the peer reached this host through a relay, and nothing connects them
// directly.
func reachedThroughRelayOnly(conns []network.Conn) bool {
	inbound := false
	for _, c := range conns {
		if !isRelayedConn(c) {
			return false
		}
		inbound = inbound || c.Stat().Direction == network.DirInbound
	}
	return inbound
}

// stop stops the retrier from starting retries.
func (r *holePunchRetrier) stop() {
	r.cancel()
	<-r.done
}

// wait waits (bounded) for the retries under way, which end once the hole-punching service is
// closed.
func (r *holePunchRetrier) wait() {
	finished := make(chan struct{})
	go func() { r.punchs.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(holePunchCloseWait):
	}
}
