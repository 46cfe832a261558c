package p2p

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"google.golang.org/protobuf/proto"
)

// This file is the host's peer routing: how a peer known by its ID alone gets addresses. hivemind's
// rpc_find answers name peers by ID without addresses, so a node's lookups dial most peers this way.

const (
	// routingReadyTimeout bounds how long making peers usable for peer routing waits for their
	// identify exchange (which tells whether they serve the kad DHT).
	routingReadyTimeout = 10 * time.Second
	// referralsKept is how many peers the referral book remembers referrers for; the peer noted
	// first is forgotten first.
	referralsKept = 4096
	// referrersPerPeer is how many referrers are kept per peer, the most recent first.
	referrersPerPeer = 3
	// referrerShare is the share of a call's remaining time kept for asking referrers when the kad
	// DHT finds nothing: the kad lookup gets the rest.
	referrerShare = 3
	// maxKadMessage caps a kad reply read from a referrer (kad's own message cap).
	maxKadMessage = 4 << 20
)

// resolver is the peer routing of the host's routed host (routed.Routing): the routed host calls
// FindPeer when it must dial a peer whose peerstore holds no address (or whose known addresses all
// failed). It asks, in order:
//
//  1. the kad DHT (FindPeer, bounded by the caller's context); when kad's routing table was empty
//     (its own admission of connected peers runs asynchronously, after identify and a query of its
//     own), the connected peers that serve kad are added to it and the lookup is tried once more;
//  2. the peers that named the wanted one (Host.NoteReferrals), most recent first: each is sent a
//     kad FIND_NODE for the peer's ID directly, and a kad server answers with the addresses its
//     peerstore holds for it (go-libp2p-kad-dht includes the target of a FIND_NODE whenever it
//     knows its addresses). The referrer is dialled by its known addresses only: the resolver never
//     recurses into itself.
//
// When both fail it returns an error wrapping ErrNoAddress (or, when the caller's context ended
// first, the context's error). It is safe for concurrent use.
type resolver struct {
	bh   host.Host // the basic host under the routed one: dials known addresses, never routes
	ids  identify.IDService
	kad  *kaddht.IpfsDHT
	refs *referralBook
	log  *slog.Logger
}

func newResolver(bh host.Host, ids identify.IDService, kad *kaddht.IpfsDHT, log *slog.Logger) *resolver {
	return &resolver{bh: bh, ids: ids, kad: kad, refs: newReferralBook(referralsKept), log: log}
}

// FindPeer returns id's addresses (routed.Routing).
func (r *resolver) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	referrers := r.refs.of(id)
	kadCtx, cancel := ctx, context.CancelFunc(func() {})
	if len(referrers) > 0 {
		kadCtx, cancel = withReserve(ctx, referrerShare)
	}
	info, err := r.findByKad(kadCtx, id)
	cancel()
	if err == nil {
		return info, nil
	}
	errs := []error{err}
	for _, ref := range referrers {
		if ctx.Err() != nil {
			break
		}
		info, err := r.askReferrer(ctx, ref, id)
		if err == nil {
			r.log.Debug("peer address found through the peer that named it", "peer", id.String(), "referrer", ref.String())
			return info, nil
		}
		errs = append(errs, fmt.Errorf("referrer %s: %w", ref, err))
	}
	if ctx.Err() != nil {
		return peer.AddrInfo{}, fmt.Errorf("p2p: find addresses of %s: %w (%w)", id, ctx.Err(), errors.Join(errs...))
	}
	return peer.AddrInfo{}, fmt.Errorf("%w: %s: %w", ErrNoAddress, id, errors.Join(errs...))
}

// findByKad asks the kad DHT; when its routing table was empty, it makes the connected peers usable
// for peer routing and asks once more.
func (r *resolver) findByKad(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	for retried := false; ; retried = true {
		empty := r.kad.RoutingTable().Size() == 0
		info, err := r.kad.FindPeer(ctx, id)
		if err == nil && len(info.Addrs) > 0 {
			return info, nil
		}
		if err == nil {
			err = routing.ErrNotFound // found, but without an address
		}
		if !empty || retried || ctx.Err() != nil || r.seed(ctx, r.bh.Network().Peers()) == 0 {
			return peer.AddrInfo{}, fmt.Errorf("kad dht: %w", err)
		}
	}
}

// seed makes peers usable for peer routing: it waits for the identify exchange of their
// connections (at most routingReadyTimeout, and ctx), then adds those that serve the kad DHT to
// kad's routing table, as kad itself does a little later. It returns how many of peers the
// table holds afterwards.
func (r *resolver) seed(ctx context.Context, peers []peer.ID) int {
	ctx, cancel := context.WithTimeout(ctx, routingReadyTimeout)
	defer cancel()
	var identified []<-chan struct{}
	for _, p := range peers {
		for _, c := range r.bh.Network().ConnsToPeer(p) {
			identified = append(identified, r.ids.IdentifyWait(c))
		}
	}
	for _, done := range identified {
		select {
		case <-done:
		case <-ctx.Done(): // the peers identified so far are still added
		}
	}
	rt := r.kad.RoutingTable()
	held := 0
	for _, p := range peers {
		if kad, _ := r.bh.Peerstore().SupportsProtocols(p, kaddht.ProtocolDHT); len(kad) == 0 {
			continue
		}
		// Replaceable, as kad adds the peers it meets while its table is empty.
		if _, err := rt.TryAddPeer(p, true, true); err != nil {
			r.log.Debug("kad routing table refused a peer", "peer", p.String(), "err", err)
			continue
		}
		held++
	}
	return held
}

// askReferrer sends ref a kad FIND_NODE for id and returns id's addresses if ref knows them.
func (r *resolver) askReferrer(ctx context.Context, ref, id peer.ID) (peer.AddrInfo, error) {
	s, err := r.bh.NewStream(allowLimited(ctx), ref, kaddht.ProtocolDHT)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(deadline)
	}
	if err := writeKadMessage(s, kadpb.NewMessage(kadpb.Message_FIND_NODE, []byte(id), 0)); err != nil {
		_ = s.Reset()
		return peer.AddrInfo{}, err
	}
	resp, err := readKadMessage(s)
	if err != nil {
		_ = s.Reset()
		return peer.AddrInfo{}, err
	}
	_ = s.Close()
	for _, info := range kadpb.PBPeersToPeerInfos(resp.GetCloserPeers()) {
		if info.ID == id && len(info.Addrs) > 0 {
			return *info, nil
		}
	}
	return peer.AddrInfo{}, fmt.Errorf("it knows no address: %w", routing.ErrNotFound)
}

// writeKadMessage writes m as kad frames it: a uvarint length, then the protobuf.
func writeKadMessage(w io.Writer, m *kadpb.Message) error {
	body, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(binary.AppendUvarint(nil, uint64(len(body))), body...))
	return err
}

// readKadMessage reads one uvarint-length-prefixed kad message of at most maxKadMessage bytes
// (readDelimited: ErrFrameTooLarge over the cap, ErrTruncatedFrame when cut short; ErrDecode when
// the body is not a kad message).
func readKadMessage(r io.Reader) (*kadpb.Message, error) {
	body, _, err := readDelimited(r, maxKadMessage, nil)
	if err != nil {
		return nil, fmt.Errorf("kad reply: %w", err)
	}
	m := new(kadpb.Message)
	if err := proto.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: kad reply: %w", ErrDecode, err)
	}
	return m, nil
}

// withReserve returns ctx with a deadline earlier than ctx's by 1/share of the time left, so a
// later step keeps that share; ctx without a deadline is returned as is.
func withReserve(ctx context.Context, share int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-time.Until(deadline)/time.Duration(share)))
}

// referralBook remembers which peers named which (see Host.NoteReferrals): for each of the last
// capacity peers noted, its last referrersPerPeer referrers, the most recent first. One mutex held
// around map and slice operations only.
type referralBook struct {
	capacity int

	mu    sync.Mutex
	by    map[peer.ID][]peer.ID
	order []peer.ID // the peers of by, in the order they were first noted
}

func newReferralBook(capacity int) *referralBook {
	return &referralBook{capacity: capacity, by: make(map[peer.ID][]peer.ID)}
}

// note records that referrer named peers.
func (b *referralBook) note(referrer peer.ID, peers []peer.ID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range peers {
		if p == referrer || p == "" {
			continue
		}
		refs, known := b.by[p]
		if len(refs) > 0 && refs[0] == referrer {
			continue
		}
		refs = slices.DeleteFunc(refs, func(r peer.ID) bool { return r == referrer })
		refs = slices.Insert(refs, 0, referrer)
		b.by[p] = refs[:min(len(refs), referrersPerPeer)]
		if !known {
			b.order = append(b.order, p)
		}
	}
	for len(b.order) > b.capacity {
		delete(b.by, b.order[0])
		b.order = b.order[1:]
	}
}

// of returns p's referrers, the most recent first (a copy).
func (b *referralBook) of(p peer.ID) []peer.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.by[p])
}
