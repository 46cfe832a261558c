package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// Node is a DHT participant: hivemind's DHTNode and DHTProtocol in one value. It reaches other
// peers through a Transport, serves them as a Handler, and offers the caller-facing Client API
// (Get, GetMany, Store, StoreMany) plus FindNearestNodes.
//
// Concurrency: every method is safe for concurrent use. The routing table, storage, cache,
// blacklist and pending-request tables are pure structures behind one mutex that is held only
// around calls into them: no I/O, callback or validator runs under it. Background work (pings
// of stale routing entries, handing records to new nodes, caching at nearest nodes, the
// routing-table refresh loop, the cache refresh loop, lookups outliving a GET) runs on goroutines
// the Node tracks; Close cancels them and waits for every one to return. Writes to a Persister
// happen after the mutation, outside the lock, in mutation order (see Persister).
//
// Life cycle: New (no traffic) → serve it as the Transport's Handler → Bootstrap → use → Close.
type Node struct {
	cfg  Config
	id   ID
	self PeerID
	tr   Transport
	log  *slog.Logger
	sem  chan struct{} // ParallelRPC slots; nil when unlimited

	// lifetime is cancelled by Close: it is the context of background work and bounds every
	// outgoing RPC, so a closed node leaves nothing running (the one stored context, DESIGN §7).
	lifetime context.Context
	stop     context.CancelFunc
	life     sync.Mutex // guards closed and wg.Add against Close's wg.Wait
	closed   bool
	wg       sync.WaitGroup

	// pushes sends every search's cache pushes (newPushBatcher); set by New, it has its own lock.
	pushes *storeBatcher

	// bootstrapped is set once Bootstrap (or AddInitialPeers) got past its pings: from then on the
	// routing-table refresh re-contacts the initial peers missing from the table (refresh.go).
	bootstrapped atomic.Bool

	// persistMu orders the storage's writes to cfg.Persister: held (only with a Persister) across
	// a request's mutations of the storage and the Persist call that follows. Taken before mu.
	persistMu sync.Mutex

	mu        sync.Mutex // guards everything below
	table     *RoutingTable
	storage   *LocalStorage
	cache     *LocalStorage
	blacklist *blacklist
	pending   map[ID][]*searchState       // reusable GETs in flight, by key
	refreshQ  *TimedStorage[ID, struct{}] // cached keys to re-fetch, by refresh time (frozen)
	refreshOn bool                        // the cache refresh loop was started
	wakeQ     chan struct{}               // wakes the cache refresh loop (buffered, 1)
	lonely    chan struct{}               // wakes the refresh loop's rejoin (buffered, 1; refresh.go)
	handoffQ  []Contact                   // nodes new to the routing table, awaiting their records
	handoffOn bool                        // a handoff loop is running
	// initialPeers are cfg.InitialPeers followed by the peers AddInitialPeers added, without
	// repeats; the slice is replaced, never modified in place, so a copy of the header is a snapshot.
	initialPeers []PeerID

	stats nodeCounters
}

// Compile-time checks: *Node is both ports.
var (
	_ Handler = (*Node)(nil)
	_ Client  = (*Node)(nil)
)

// New returns a node ready to serve, without sending anything: it validates cfg, applies the
// defaults to a copy, loads the records of cfg.Persister (if any) into the local storage, and starts
// the background maintenance (the routing-table refresh, which has nothing to do until the table
// holds nodes). self is the node's own peer ID (never called); tr reaches other peers.
//
// The node answers its Handler methods at once. Serve it as the Transport's Handler (unless
// cfg.ClientMode), then call Bootstrap: during bootstrap the initial peers ping the node back. The
// caller must Close the node, also when Bootstrap fails.
func New(cfg Config, self PeerID, tr Transport) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tr == nil {
		return nil, fmt.Errorf("%w: nil Transport", ErrInvalidArgument)
	}
	if self == "" {
		return nil, fmt.Errorf("%w: empty self PeerID", ErrInvalidArgument)
	}
	cfg = cfg.withDefaults()
	id := cfg.NodeID
	if id == (ID{}) {
		id = RandomID()
	}
	now := cfg.Clock.Now()
	table, err := NewRoutingTable(id, RoutingConfig{BucketSize: cfg.BucketSize, DepthModulo: cfg.DepthModulo}, now)
	if err != nil {
		return nil, err
	}
	storage, cache, err := newLocalStores(cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:       cfg,
		id:        id,
		self:      self,
		tr:        tr,
		log:       cfg.Logger,
		table:     table,
		storage:   storage,
		cache:     cache,
		blacklist: newBlacklist(seconds(cfg.BlacklistTime), cfg.BackoffRate),
		pending:   make(map[ID][]*searchState),
		refreshQ:  NewTimedStorage(TimedStorageConfig[ID, struct{}]{Compare: ID.Cmp}),
		wakeQ:     make(chan struct{}, 1),
		lonely:    make(chan struct{}, 1),

		initialPeers: cfg.InitialPeers,
	}
	n.refreshQ.SetFrozen(true)
	if cfg.ParallelRPC > 0 {
		n.sem = make(chan struct{}, cfg.ParallelRPC)
	}
	if err := n.load(); err != nil {
		return nil, err
	}
	n.lifetime, n.stop = context.WithCancel(context.Background())
	n.pushes = n.newPushBatcher()
	if cfg.RefreshInterval > 0 {
		n.spawn(n.refreshLoop)
	}
	return n, nil
}

// NodeID returns the node's 160-bit ID.
func (n *Node) NodeID() ID { return n.id }

// PeerID returns the node's own peer ID, as given to New.
func (n *Node) PeerID() PeerID { return n.self }

// Config returns the node's configuration with the defaults applied. Its InitialPeers are those
// given to New; InitialPeers also lists the peers added since.
func (n *Node) Config() Config { return n.cfg }

// Close stops the node: public calls and handlers fail with ErrShutdown from now on, background
// work and outgoing RPCs are cancelled, and Close returns when every goroutine the node started has
// returned. It is idempotent and always returns nil (the error is for io.Closer-like use).
func (n *Node) Close() error {
	n.life.Lock()
	if n.closed {
		n.life.Unlock()
		return nil
	}
	n.closed = true
	n.life.Unlock()
	n.stop()
	n.wg.Wait()
	return nil
}

// isClosed reports whether Close was called.
func (n *Node) isClosed() bool {
	n.life.Lock()
	defer n.life.Unlock()
	return n.closed
}

// spawn runs f on a tracked goroutine with the node's lifetime context; it does nothing once the
// node is closed and reports whether f was started.
func (n *Node) spawn(f func(ctx context.Context)) bool {
	n.life.Lock()
	defer n.life.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f(n.lifetime)
	}()
	return true
}

// withLifetime returns ctx, also cancelled when the node closes.
func (n *Node) withLifetime(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.lifetime, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// nodeInfo returns the NodeInfo this node sends: its ID, or an empty (but present) NodeInfo in
// client mode, so that peers do not add it to their routing tables.
func (n *Node) nodeInfo() *dhtpb.NodeInfo {
	if n.cfg.ClientMode {
		return &dhtpb.NodeInfo{}
	}
	return &dhtpb.NodeInfo{NodeId: n.id.Bytes()}
}

// now returns the DHT time.
func (n *Node) now() float64 { return n.cfg.Clock.Now() }

// Bootstrap joins the DHT through the initial peers (spec §2.2: cfg.InitialPeers, plus any that
// AddInitialPeers added before the call): validated pings to every initial peer (the first answer
// is awaited, the others until BootstrapTimeout), then a lookup of the node's own ID, bounded by
// what is left of BootstrapTimeout (the lookup carries on in the background if the budget runs
// out). ctx bounds the whole call. Without initial peers it does nothing. Call it
// once the node is served: each initial peer pings the node back to validate it.
//
// When no initial peer answers, the error wraps ErrBootstrapFailed and names every peer and why it
// failed (unless cfg.AllowBootstrapFailure: a warning is logged); when an answering peer fails
// validation (it cannot reach us, or its clock is off), the error wraps ErrBootstrapFailed and
// ErrValidation and names the peer (unless cfg.LenientBootstrap). A failed Bootstrap leaves the node
// open: Close it, or call Bootstrap again. A closed node returns ErrShutdown.
func (n *Node) Bootstrap(ctx context.Context) error {
	if n.isClosed() {
		return ErrShutdown
	}
	initial := n.InitialPeers()
	if len(initial) == 0 {
		return nil
	}
	validate := !n.cfg.AllowBootstrapFailure
	strict := !n.cfg.LenientBootstrap
	// budget bounds stages 2 and 3; the pings themselves are bounded by WaitTimeout, so the first
	// answer is awaited even when the budget is shorter (hivemind's stage 1).
	budget, cancel := context.WithTimeout(ctx, n.cfg.BootstrapTimeout)
	defer cancel()
	pingCtx, cancelPings := context.WithCancel(ctx)
	defer cancelPings()

	type pinged struct {
		peer PeerID
		err  error
	}
	results := make(chan pinged, len(initial))
	for _, p := range initial {
		go func() {
			_, err := n.callPing(pingCtx, p, validate, strict)
			results <- pinged{peer: p, err: err}
		}()
	}
	var (
		answered int
		failures []error
		invalid  []error
	)
	for i := range initial {
		var r pinged
		if i == 0 {
			r = <-results
		} else {
			select {
			case r = <-results:
			case <-budget.Done():
				cancelPings() // stragglers: their error says the ping was cancelled
				r = <-results
			}
		}
		switch {
		case r.err == nil:
			answered++
		case errors.Is(r.err, ErrValidation):
			invalid = append(invalid, fmt.Errorf("peer %s: %w", fmtPeer(r.peer), r.err))
		case budget.Err() != nil && errors.Is(r.err, context.Canceled):
			failures = append(failures, fmt.Errorf("peer %s: no answer within BootstrapTimeout (%v): %w",
				fmtPeer(r.peer), n.cfg.BootstrapTimeout, r.err))
		default:
			failures = append(failures, fmt.Errorf("peer %s: %w", fmtPeer(r.peer), r.err))
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBootstrapFailed, err)
	}
	if len(invalid) > 0 {
		// strict: a peer answered but failed validation (cannot reach us, or clock skew).
		return fmt.Errorf("%w: %w", ErrBootstrapFailed, errorList(invalid))
	}
	if answered == 0 {
		err := fmt.Errorf("%w: none of the %d initial peers responded to a ping: %w",
			ErrBootstrapFailed, len(initial), errorList(failures))
		if !n.cfg.AllowBootstrapFailure {
			return err
		}
		n.log.Warn("dht: bootstrap failed; continuing (AllowBootstrapFailure)", "err", err)
	}

	n.bootstrapped.Store(true)
	n.mu.Lock()
	n.noteIfLonelyLocked() // no initial peer answered: rejoin as soon as one does (refresh.go)
	n.mu.Unlock()
	// Stage 3: look up our own ID with what is left of the budget; the lookup is not cancelled
	// when the budget runs out (hivemind), it goes on in the background.
	done := make(chan struct{})
	if !n.spawn(func(ctx context.Context) {
		defer close(done)
		if _, err := n.FindNearestNodes(ctx, []ID{n.id}, 0, false); err != nil && ctx.Err() == nil {
			n.log.Debug("dht: bootstrap lookup failed", "err", err)
		}
	}) {
		return ErrShutdown
	}
	select {
	case <-done:
	case <-budget.Done():
	}
	return nil
}

// Stats is a snapshot of a node's state and counters (for a worker's status report).
type Stats struct {
	NodeID ID
	// RoutingTable counts the routing table's buckets and nodes.
	RoutingTable RoutingStats
	// StoredKeys and CachedKeys count the keys of the local storage and cache.
	StoredKeys, CachedKeys int
	// Blacklisted counts the peers currently banned.
	Blacklisted int
	// PendingGets counts reusable GET searches in flight, by key.
	PendingGets int
	// Sent, Failed and Served count outgoing RPCs, the outgoing RPCs that got no answer, and
	// incoming requests handled, per RPC.
	Sent, Failed, Served RPCCounts
	// Gets and Stores measure the node's GetMany (and Get) and StoreMany (and Store) calls that
	// returned without an error.
	Gets, Stores OpCounts
}

// OpCounts measure one kind of caller-facing operation: how many completed, and the network work
// they did. A reader takes the difference of two snapshots for an interval; for one operation alone
// (nothing else of its kind running), Rounds times a round trip is the least time its RPCs could
// have taken: its critical path.
type OpCounts struct {
	// Ops counts the operations.
	Ops uint64
	// Rounds sums the sequential RPC rounds of the operations: for each, the longest chain of its
	// RPCs in which every call was sent only after the previous one had answered (or failed),
	// among the calls completed by the time the operation returned. Calls sent side by side share a
	// round; an operation answered from the local storage made 0 rounds.
	Rounds uint64
	// RPCs counts the RPCs the operations had sent when they returned: their lookups' FINDs and
	// their STOREs to replicas. A FIND a lookup sends after its operation returned is not counted.
	RPCs uint64
}

// RPCCounts counts the three DHT RPCs.
type RPCCounts struct {
	Ping, Store, Find uint64
}

type rpcKind int

const (
	rpcPing rpcKind = iota
	rpcStore
	rpcFind
	numRPCKinds
)

type opKind int

const (
	opGet opKind = iota
	opStore
	numOpKinds
)

type nodeCounters struct {
	sent, failed, served [numRPCKinds]atomic.Uint64
	ops                  [numOpKinds]struct{ ops, rounds, rpcs atomic.Uint64 }
}

// opDone counts an operation of kind that completed with trace's rounds.
func (c *nodeCounters) opDone(kind opKind, trace *opTrace, rounds int) {
	o := &c.ops[kind]
	o.ops.Add(1)
	o.rounds.Add(uint64(rounds))
	if trace != nil {
		o.rpcs.Add(trace.rpcs.Load())
	}
}

func (c *nodeCounters) opCounts(kind opKind) OpCounts {
	o := &c.ops[kind]
	return OpCounts{Ops: o.ops.Load(), Rounds: o.rounds.Load(), RPCs: o.rpcs.Load()}
}

// opTrace follows the RPCs of one caller-facing operation (OpCounts): how many it sent, and the
// deepest round among those completed. A nil *opTrace (background work) records nothing. Safe for
// concurrent use.
type opTrace struct {
	rounds atomic.Int64
	rpcs   atomic.Uint64
}

// sent counts one RPC.
func (t *opTrace) sent() {
	if t != nil {
		t.rpcs.Add(1)
	}
}

// completed notes that an RPC of round r has answered or failed.
func (t *opTrace) completed(r int) {
	if t == nil {
		return
	}
	for {
		cur := t.rounds.Load()
		if int64(r) <= cur || t.rounds.CompareAndSwap(cur, int64(r)) {
			return
		}
	}
}

// deepest is the deepest round completed so far.
func (t *opTrace) deepest() int {
	if t == nil {
		return 0
	}
	return int(t.rounds.Load())
}

func countsOf(c *[numRPCKinds]atomic.Uint64) RPCCounts {
	return RPCCounts{Ping: c[rpcPing].Load(), Store: c[rpcStore].Load(), Find: c[rpcFind].Load()}
}

// RoutingTablePeers returns a snapshot of the contacts in the routing table's buckets (not their
// replacement lists), least recently updated first within each bucket.
func (n *Node) RoutingTablePeers() []Contact {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Contact
	for _, b := range n.table.Buckets() {
		out = append(out, b.Nodes...)
	}
	return out
}

// Stats returns a snapshot of the node's state and counters.
func (n *Node) Stats() Stats {
	now := n.now()
	n.mu.Lock()
	s := Stats{
		NodeID:       n.id,
		RoutingTable: n.table.Stats(),
		StoredKeys:   n.storage.Len(now),
		CachedKeys:   n.cache.Len(now),
		Blacklisted:  len(n.blacklist.bannedPeers(now)),
	}
	for _, p := range n.pending {
		s.PendingGets += len(p)
	}
	n.mu.Unlock()
	s.Sent = countsOf(&n.stats.sent)
	s.Failed = countsOf(&n.stats.failed)
	s.Served = countsOf(&n.stats.served)
	s.Gets = n.stats.opCounts(opGet)
	s.Stores = n.stats.opCounts(opStore)
	return s
}

// fmtPeer renders a peer ID for messages: base58btc of its bytes, as libp2p prints peer IDs.
func fmtPeer(p PeerID) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	b := []byte(p)
	x := new(big.Int).SetBytes(b)
	base, mod := big.NewInt(58), new(big.Int)
	var out []byte
	for x.Sign() > 0 {
		x.DivMod(x, base, mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// sinceDHT converts a DHT-time instant to the wall-clock duration until it (≤ 0 when past).
func (n *Node) untilDHT(t float64) time.Duration {
	d := t - n.now()
	if d <= 0 {
		return 0
	}
	if d > float64(1<<62)/1e9 {
		return time.Duration(1 << 62)
	}
	return time.Duration(d * 1e9)
}

// errorList joins errors on one line ("; "), keeping each for errors.Is.
type errorList []error

func (l errorList) Error() string {
	parts := make([]string, len(l))
	for i, err := range l {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (l errorList) Unwrap() []error { return l }
