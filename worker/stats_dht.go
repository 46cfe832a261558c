package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// The DHT RPCs, as counted by dhtStats.
const (
	rpcPing = iota
	rpcStore
	rpcFind
	numRPCs
)

// rpcNames are hivemind's handler names of the RPCs (RPCCounter.name).
var rpcNames = [numRPCs]string{rpcPing: "rpc_ping", rpcStore: "rpc_store", rpcFind: "rpc_find"}

// rpcIndex returns the index of a handler name, or -1.
func rpcIndex(name string) int {
	for i, n := range rpcNames {
		if n == name {
			return i
		}
	}
	return -1
}

// maxContacts bounds the DHT contacts a worker remembers (the most recently heard from stay).
const maxContacts = 256

// rttSmoothing is the weight of a new round trip in a contact's moving average (libp2p's peerstore
// uses 0.1 as well).
const rttSmoothing = 0.1

// dhtStats measures a node's DHT RPCs in both directions through the Transport and Handler
// wrappers of dhtrpc.NodeOptions: latency histograms per RPC and the contacts (peers that answered
// this node's requests or sent it theirs).
type dhtStats struct {
	wrapped  atomic.Bool // the node's RPCs go through the wrappers
	sent     [numRPCs]histogram
	received [numRPCs]histogram
	contacts contactBook
}

// options returns the wrappers to build the node with.
func (s *dhtStats) options() dhtrpc.NodeOptions {
	return dhtrpc.NodeOptions{
		WrapTransport: func(next dht.Transport) dht.Transport {
			s.wrapped.Store(true)
			return timedTransport{next: next, stats: s}
		},
		WrapHandler: func(next dht.Handler) dht.Handler { return timedHandler{next: next, stats: s} },
	}
}

// sentDone counts a request sent to peer at t0 that ended with err.
func (s *dhtStats) sentDone(rpc int, peer dht.PeerID, t0 time.Time, err error) {
	now := time.Now()
	rtt := now.Sub(t0)
	s.sent[rpc].observe(rtt)
	if err == nil {
		s.contacts.answered(peer, rtt, now)
	}
}

// receivedDone counts a request from peer handled since t0.
func (s *dhtStats) receivedDone(rpc int, from dht.PeerID, t0 time.Time) {
	now := time.Now()
	s.received[rpc].observe(now.Sub(t0))
	s.contacts.requested(from, now)
}

// timedTransport measures every request the node sends.
type timedTransport struct {
	next  dht.Transport
	stats *dhtStats
}

func (t timedTransport) Ping(ctx context.Context, peer dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	t0 := time.Now()
	resp, err := t.next.Ping(ctx, peer, req)
	t.stats.sentDone(rpcPing, peer, t0, err)
	return resp, err
}

func (t timedTransport) Store(ctx context.Context, peer dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	t0 := time.Now()
	resp, err := t.next.Store(ctx, peer, req)
	t.stats.sentDone(rpcStore, peer, t0, err)
	return resp, err
}

func (t timedTransport) Find(ctx context.Context, peer dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	t0 := time.Now()
	resp, err := t.next.Find(ctx, peer, req)
	t.stats.sentDone(rpcFind, peer, t0, err)
	return resp, err
}

// timedHandler measures every request the node serves.
type timedHandler struct {
	next  dht.Handler
	stats *dhtStats
}

func (h timedHandler) HandlePing(ctx context.Context, from dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	t0 := time.Now()
	defer h.stats.receivedDone(rpcPing, from, t0)
	return h.next.HandlePing(ctx, from, req)
}

func (h timedHandler) HandleStore(ctx context.Context, from dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	t0 := time.Now()
	defer h.stats.receivedDone(rpcStore, from, t0)
	return h.next.HandleStore(ctx, from, req)
}

func (h timedHandler) HandleFind(ctx context.Context, from dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	t0 := time.Now()
	defer h.stats.receivedDone(rpcFind, from, t0)
	return h.next.HandleFind(ctx, from, req)
}

// contact is what a worker remembers of one DHT peer.
type contact struct {
	rtt         time.Duration // moving average of answered round trips; 0 before the first answer
	lastAnswer  time.Time     // zero when it never answered
	lastRequest time.Time     // zero when it never sent a request
}

// last is when the peer was last heard from.
func (c contact) last() time.Time {
	if c.lastAnswer.After(c.lastRequest) {
		return c.lastAnswer
	}
	return c.lastRequest
}

// contactBook remembers up to maxContacts DHT peers; when full, a new peer replaces the one heard
// from least recently. One lock, held around map reads and writes only; contacts are stored by
// value, so updating a known peer allocates nothing.
type contactBook struct {
	mu    sync.Mutex
	peers map[dht.PeerID]contact
}

func (b *contactBook) answered(p dht.PeerID, rtt time.Duration, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.getLocked(p)
	if c.rtt == 0 {
		c.rtt = rtt
	} else {
		c.rtt = time.Duration(float64(c.rtt)*(1-rttSmoothing) + float64(rtt)*rttSmoothing)
	}
	c.lastAnswer = now
	b.peers[p] = c
}

func (b *contactBook) requested(p dht.PeerID, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.getLocked(p)
	c.lastRequest = now
	b.peers[p] = c
}

// getLocked returns p's contact (zero for a new one, for which room is made); b.mu is held.
func (b *contactBook) getLocked(p dht.PeerID) contact {
	if b.peers == nil {
		b.peers = make(map[dht.PeerID]contact)
	}
	c, ok := b.peers[p]
	if !ok && len(b.peers) >= maxContacts {
		b.evictOldestLocked()
	}
	return c
}

// evictOldestLocked forgets the contact heard from least recently; b.mu is held.
func (b *contactBook) evictOldestLocked() {
	var oldest dht.PeerID
	var at time.Time
	first := true
	for p, c := range b.peers {
		if l := c.last(); first || l.Before(at) {
			oldest, at, first = p, l, false
		}
	}
	delete(b.peers, oldest)
}

// snapshot copies the contacts.
func (b *contactBook) snapshot() map[dht.PeerID]contact {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[dht.PeerID]contact, len(b.peers))
	for p, c := range b.peers {
		out[p] = c
	}
	return out
}
