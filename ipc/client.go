package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Client calls one worker (or whichever worker currently serves a pool slot). It mirrors hivemind's
// DHT: Get/GetMany with Latest and SufficientExpiration, Store/StoreMany with subkeys and absolute
// expirations, PeerID, VisibleMaddrs, Stats, Shutdown; AddPeers hands the worker's node more peers.
//
// Contract: safe for concurrent use; ctx is the first argument of every method, its deadline and
// cancellation reach the worker's handler, and every method returns when ctx is done. Get returns
// (nil, nil) when nothing was found. A record a validator rejects is a false StoreResult, not an
// error. Errors wrap the dht sentinel the worker reported (errors.Is(err, dht.ErrInvalidKey) works as
// in process) and an ipc sentinel: ErrWorkerGone, ErrRestarting, ErrDeadlineExceeded, ErrCanceled,
// ErrInvalidArgument, ErrNotConfigured, ErrGaveUp, ErrStopped or ErrRemote.
type Client struct {
	src source
}

var _ dht.Client = (*Client)(nil)

// source yields the connection to call; a pool slot's source changes with each restart.
type source interface {
	// conn returns the current connection, or a typed error when there is none (restarting, gave
	// up, stopped); it may wait for one, bounded by ctx.
	conn(ctx context.Context) (grpc.ClientConnInterface, error)
}

// fixedSource is one connection for the lifetime of a worker.
type fixedSource struct {
	cc   grpc.ClientConnInterface
	done <-chan struct{} // closed when the worker process exited
}

func (s fixedSource) conn(context.Context) (grpc.ClientConnInterface, error) {
	select {
	case <-s.done:
		return nil, fmt.Errorf("%w: process exited", ErrWorkerGone)
	default:
		return s.cc, nil
	}
}

// NewClient returns a client calling the worker at the other end of cc (a connection a Launcher's
// Process gives out). done, when non-nil, is closed when that worker exits; calls then fail fast
// with ErrWorkerGone.
func NewClient(cc grpc.ClientConnInterface, done <-chan struct{}) *Client {
	return &Client{src: fixedSource{cc: cc, done: done}}
}

// conn returns the connection to call for op, or why there is none (ctx ended, no worker).
func (c *Client) conn(ctx context.Context, op string) (grpc.ClientConnInterface, error) {
	if err := ctx.Err(); err != nil {
		return nil, ctxError(op, err)
	}
	cc, err := c.src.conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("ipc: %s: %w", op, err)
	}
	return cc, nil
}

func (c *Client) stub(ctx context.Context, op string) (ipcpb.WorkerClient, error) {
	cc, err := c.conn(ctx, op)
	if err != nil {
		return nil, err
	}
	return ipcpb.NewWorkerClient(cc), nil
}

// Get looks a key up (hivemind's DHT.get). It travels on one of the connection's open GetStream
// streams (see WorkerConn), or as a unary call. A stream that breaks under the call before the worker
// answers is retried once as a unary call with the same context (Get is a read: asking twice is
// safe); a typed worker error (a dht sentinel) is the worker's answer and is not retried.
func (c *Client) Get(ctx context.Context, key dht.Key, opts dht.GetOptions) (*dht.Result, error) {
	cc, err := c.conn(ctx, "Get")
	if err != nil {
		return nil, err
	}
	req := &ipcpb.GetRequest{Key: keyToProto(key), Options: getOptionsToProto(opts)}
	var resp *ipcpb.GetResponse
	served := false
	if wc, ok := cc.(*WorkerConn); ok {
		resp, served, err = wc.gets.call(ctx, wc.ClientConn, req)
	}
	if !served {
		resp, err = ipcpb.NewWorkerClient(cc).Get(ctx, req)
	}
	if err != nil {
		return nil, fromRPC(ctx, "Get", err)
	}
	return resultFromProto(resp.GetResult()), nil
}

// GetMany looks several keys up; the results are in key order, nil where nothing was found.
func (c *Client) GetMany(ctx context.Context, keys []dht.Key, opts dht.GetOptions) ([]*dht.Result, error) {
	w, err := c.stub(ctx, "GetMany")
	if err != nil {
		return nil, err
	}
	req := &ipcpb.GetManyRequest{Keys: make([]*ipcpb.Key, len(keys)), Options: getOptionsToProto(opts)}
	for i, k := range keys {
		req.Keys[i] = keyToProto(k)
	}
	resp, err := w.GetMany(ctx, req)
	if err != nil {
		return nil, fromRPC(ctx, "GetMany", err)
	}
	if len(resp.GetResults()) != len(keys) {
		return nil, fmt.Errorf("ipc: GetMany: %w: %d results for %d keys", ErrRemote, len(resp.GetResults()), len(keys))
	}
	out := make([]*dht.Result, len(keys))
	for i, r := range resp.GetResults() {
		out[i] = resultFromProto(r)
	}
	return out, nil
}

// Store stores one item (hivemind's DHT.store); Expiration is absolute DHT time.
func (c *Client) Store(ctx context.Context, item dht.StoreItem) (dht.StoreResult, error) {
	pi, err := storeItemToProto(item)
	if err != nil {
		return dht.StoreResult{}, fmt.Errorf("ipc: Store: %w", err)
	}
	w, err := c.stub(ctx, "Store")
	if err != nil {
		return dht.StoreResult{}, err
	}
	resp, err := w.Store(ctx, &ipcpb.StoreRequest{Item: pi})
	if err != nil {
		return dht.StoreResult{}, fromRPC(ctx, "Store", err)
	}
	return storeResultFromProto(resp.GetResult()), nil
}

// StoreMany stores several items; the results are in item order.
func (c *Client) StoreMany(ctx context.Context, items []dht.StoreItem) ([]dht.StoreResult, error) {
	req := &ipcpb.StoreManyRequest{Items: make([]*ipcpb.StoreItem, len(items))}
	for i, it := range items {
		pi, err := storeItemToProto(it)
		if err != nil {
			return nil, fmt.Errorf("ipc: StoreMany: item %d: %w", i, err)
		}
		req.Items[i] = pi
	}
	w, err := c.stub(ctx, "StoreMany")
	if err != nil {
		return nil, err
	}
	resp, err := w.StoreMany(ctx, req)
	if err != nil {
		return nil, fromRPC(ctx, "StoreMany", err)
	}
	if len(resp.GetResults()) != len(items) {
		return nil, fmt.Errorf("ipc: StoreMany: %w: %d results for %d items", ErrRemote, len(resp.GetResults()), len(items))
	}
	out := make([]dht.StoreResult, len(items))
	for i, r := range resp.GetResults() {
		out[i] = storeResultFromProto(r)
	}
	return out, nil
}

// PeerID is a worker's libp2p peer ID.
type PeerID struct {
	// Raw is the multihash bytes, as dht.PeerID.
	Raw dht.PeerID
	// Base58 is the text form (Qm…, 12D3…).
	Base58 string
}

// String returns the base58 form.
func (p PeerID) String() string { return p.Base58 }

// PeerID returns the worker's peer ID.
func (c *Client) PeerID(ctx context.Context) (PeerID, error) {
	w, err := c.stub(ctx, "PeerID")
	if err != nil {
		return PeerID{}, err
	}
	resp, err := w.PeerID(ctx, &ipcpb.PeerIDRequest{})
	if err != nil {
		return PeerID{}, fromRPC(ctx, "PeerID", err)
	}
	return PeerID{Raw: dht.PeerID(resp.GetPeerId()), Base58: resp.GetPeerIdB58()}, nil
}

// VisibleMaddrs returns the worker's multiaddrs, each ending in /p2p/<peer id> (hivemind's
// get_visible_maddrs); latest re-queries the host.
func (c *Client) VisibleMaddrs(ctx context.Context, latest bool) ([]string, error) {
	w, err := c.stub(ctx, "VisibleMaddrs")
	if err != nil {
		return nil, err
	}
	resp, err := w.VisibleMaddrs(ctx, &ipcpb.VisibleMaddrsRequest{Latest: latest})
	if err != nil {
		return nil, fromRPC(ctx, "VisibleMaddrs", err)
	}
	return resp.GetMaddrs(), nil
}

// Stats is a snapshot of a worker: its node's counters, the calls made to it, its DHT RPCs, its
// host's peers and its process's memory.
type Stats struct {
	RoutingTableSize int
	StoredKeys       int
	CachedKeys       int
	ConnectedPeers   int
	PersistedRecords int
	PID              int
	Uptime           time.Duration
	RPCs             []RPCStats
	// Ops counts the calls made to the worker, per kind.
	Ops []OpStats
	// Peers are the host's connected peers and the node's DHT contacts, sorted by peer ID.
	Peers []PeerStatus
	// RSSBytes is the worker process's resident set size (0 when unknown); HeapBytes its Go heap
	// in use.
	RSSBytes   uint64
	HeapBytes  uint64
	Goroutines int
	// Gets and Stores measure the node's own get and store operations (of every caller): how many
	// completed, their sequential RPC rounds and their RPCs (dht.OpCounts); zero from a worker that
	// does not report them.
	Gets, Stores dht.OpCounts
	// NAT is the worker's reachability and relays.
	NAT NATStatus
}

// RPCStats counts one DHT RPC kind (a hivemind handler name such as "rpc_find").
type RPCStats struct {
	Name           string `json:"name"`
	Sent           uint64 `json:"sent"`
	SentFailed     uint64 `json:"sent_failed"`
	Received       uint64 `json:"received"`
	ReceivedFailed uint64 `json:"received_failed"`
	// SentLatency holds the round trips of the requests the node sent, ReceivedLatency the time it
	// took to handle the ones it received; both empty when the worker's node is not instrumented.
	SentLatency     Histogram `json:"sent_latency,omitzero"`
	ReceivedLatency Histogram `json:"received_latency,omitzero"`
}

// Stats returns the worker's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	w, err := c.stub(ctx, "Stats")
	if err != nil {
		return Stats{}, err
	}
	resp, err := w.Stats(ctx, &ipcpb.StatsRequest{})
	if err != nil {
		return Stats{}, fromRPC(ctx, "Stats", err)
	}
	now := time.Now()
	out := Stats{
		RoutingTableSize: int(resp.GetRoutingTableSize()),
		StoredKeys:       int(resp.GetStoredKeys()),
		CachedKeys:       int(resp.GetCachedKeys()),
		ConnectedPeers:   int(resp.GetConnectedPeers()),
		PersistedRecords: int(resp.GetPersistedRecords()),
		PID:              int(resp.GetPid()),
		Uptime:           time.Duration(resp.GetUptimeSeconds() * float64(time.Second)),
		RSSBytes:         resp.GetRssBytes(),
		HeapBytes:        resp.GetHeapBytes(),
		Goroutines:       int(resp.GetGoroutines()),
		NAT:              natFromProto(resp.GetNat()),
	}
	for _, r := range resp.GetRpcs() {
		out.RPCs = append(out.RPCs, RPCStats{
			Name: r.GetName(), Sent: r.GetSent(), SentFailed: r.GetSentFailed(),
			Received: r.GetReceived(), ReceivedFailed: r.GetReceivedFailed(),
			SentLatency:     histogramFromProto(r.GetSentLatency()),
			ReceivedLatency: histogramFromProto(r.GetReceivedLatency()),
		})
	}
	for _, o := range resp.GetOps() {
		out.Ops = append(out.Ops, OpStats{
			Name: o.GetName(), Calls: o.GetCalls(), Failed: o.GetFailed(), Latency: histogramFromProto(o.GetLatency()),
		})
	}
	for _, p := range resp.GetPeers() {
		out.Peers = append(out.Peers, peerFromProto(p, now))
	}
	for _, o := range resp.GetDhtOps() {
		c := dht.OpCounts{Ops: o.GetOps(), Rounds: o.GetRounds(), RPCs: o.GetRpcs()}
		switch o.GetName() {
		case "get":
			out.Gets = c
		case "store":
			out.Stores = c
		}
	}
	return out, nil
}

// Health checks that the worker process serves (the gRPC health service), bounded by ctx: a stopped
// or hung worker fails with ErrDeadlineExceeded.
func (c *Client) Health(ctx context.Context) error {
	cc, err := c.conn(ctx, "Health")
	if err != nil {
		return err
	}
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: ipcpb.HealthService})
	if err != nil {
		return fromRPC(ctx, "Health", err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("ipc: Health: %w: status %s", ErrWorkerGone, s)
	}
	return nil
}

// AddPeersResult is what a worker did with the peers AddPeers handed it.
type AddPeersResult struct {
	// Answered counts the distinct peers that answered a DHT ping.
	Answered int
	// Peers has one outcome per multiaddr, in request order.
	Peers []PeerOutcome
}

// PeerOutcome is what became of one multiaddr given to AddPeers.
type PeerOutcome struct {
	Maddr string
	// Connected: the worker's host connected to the peer.
	Connected bool
	// Error says why it could not connect; empty when Connected.
	Error string
}

// AddPeers hands the worker's running node more peers, maddrs each ending in /p2p/<peer id>: its
// host connects to them and its DHT node keeps them as initial peers (the routing-table refresh
// re-contacts them whenever they are missing from its routing table), pings them and, when one
// answers, looks up its own ID through them. A node that started alone joins their swarm this way.
// A malformed multiaddr (or none at all) fails the call with ErrInvalidArgument before anything is
// done; unreachable peers are reported in the result, not as an error.
func (c *Client) AddPeers(ctx context.Context, maddrs []string) (AddPeersResult, error) {
	w, err := c.stub(ctx, "AddPeers")
	if err != nil {
		return AddPeersResult{}, err
	}
	resp, err := w.AddPeers(ctx, &ipcpb.AddPeersRequest{Maddrs: maddrs})
	if err != nil {
		return AddPeersResult{}, fromRPC(ctx, "AddPeers", err)
	}
	out := AddPeersResult{Answered: int(resp.GetAnswered())}
	for _, p := range resp.GetPeers() {
		out.Peers = append(out.Peers, PeerOutcome{Maddr: p.GetMaddr(), Connected: p.GetConnected(), Error: p.GetError()})
	}
	return out, nil
}

// Shutdown asks the worker to drain and exit (the RPC only; Worker.Stop and Pool run the whole stop
// sequence).
func (c *Client) Shutdown(ctx context.Context) error {
	w, err := c.stub(ctx, "Shutdown")
	if err != nil {
		return err
	}
	if _, err := w.Shutdown(ctx, &ipcpb.ShutdownRequest{}); err != nil {
		return fromRPC(ctx, "Shutdown", err)
	}
	return nil
}

// configure sends the node configuration and waits until the node is ready.
func (c *Client) configure(ctx context.Context, cfg NodeConfig) (*ipcpb.ConfigureResponse, error) {
	w, err := c.stub(ctx, "Configure")
	if err != nil {
		return nil, err
	}
	resp, err := w.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: cfg.toProto()})
	if err != nil {
		return nil, fromRPC(ctx, "Configure", err)
	}
	return resp, nil
}

// WorkerConn is the connection to one worker process (what an ExecLauncher's Process gives out): the
// gRPC connection, plus the open GetStream streams that every Client of this connection shares (see
// getStreams). Clients of any other connection make unary calls.
type WorkerConn struct {
	*grpc.ClientConn
	gets getStreams
}

// NewWorkerConn wraps the gRPC connection to a worker.
func NewWorkerConn(cc *grpc.ClientConn) *WorkerConn {
	return &WorkerConn{ClientConn: cc}
}

// closeStreams ends the idle streams (the worker's handlers return); the connection stays open.
func (c *WorkerConn) closeStreams() { c.gets.closeIdle() }

// maxIdleStreams bounds the open streams kept per connection: as many calls as can run at once
// without opening a stream (each idle stream holds a goroutine in the worker).
const maxIdleStreams = 32

// getStreams keeps the idle GetStream streams of one connection open. A call takes an idle stream
// (or opens one), sends its request, reads the answer and puts the stream back, so a call costs two
// messages on an open stream instead of a new stream: about half the cost of a unary call between
// two processes. One call at a time uses a stream; each call's context bounds it (the stream is
// cancelled when the context ends, which the worker's handler sees as its context's cancellation).
type getStreams struct {
	mu          sync.Mutex
	idle        []*getStream
	unsupported bool // the worker does not serve GetStream: use unary calls
}

// getStream is one open stream of a getStreams.
type getStream struct {
	ipcpb.Worker_GetStreamClient
	cancel context.CancelFunc
}

// close ends the stream (the worker's handler returns).
func (s *getStream) close() {
	_ = s.CloseSend()
	s.cancel()
}

// call sends req on one of the streams and returns the answer. served is false, with nothing
// received, when the caller is to make the unary call instead: the worker does not serve GetStream,
// or the stream broke before it answered (see streamBroke). The stream may break while idle or
// under this call, with the request at the worker or not; either way the unary call asks again, once,
// with the same context, so the call never outlives it. Otherwise err is the status the unary call
// would have returned (the context's when the context ended).
func (p *getStreams) call(ctx context.Context, cc *grpc.ClientConn, req *ipcpb.GetRequest) (resp *ipcpb.GetResponse, served bool, err error) {
	s, ok := p.take()
	if !ok {
		return nil, false, nil
	}
	if s == nil {
		sctx, cancel := context.WithCancel(context.Background()) // the stream outlives this call
		cs, err := ipcpb.NewWorkerClient(cc).GetStream(sctx)
		if err != nil {
			cancel()
			return nil, true, err
		}
		s = &getStream{Worker_GetStreamClient: cs, cancel: cancel}
	}
	stop := context.AfterFunc(ctx, s.cancel)
	err = s.Send(req)
	if err == nil || errors.Is(err, io.EOF) { // io.EOF: the stream ended, Recv returns why
		resp, err = s.Recv()
	}
	if stop() && err == nil {
		p.put(s)
		return resp, true, nil
	}
	s.close()
	switch {
	case err == nil: // answered as the context ended: the stream is cancelled, the answer stands
		return resp, true, nil
	case ctx.Err() != nil:
		return nil, true, status.FromContextError(ctx.Err()).Err()
	case status.Code(err) == codes.Unimplemented:
		p.mu.Lock()
		p.unsupported = true
		p.mu.Unlock()
		return nil, false, nil
	case streamBroke(err):
		return nil, false, nil
	}
	return nil, true, err
}

// streamBroke reports an error that ended a stream without the worker's answer: the stream ended
// with no status (io.EOF), or a status a broken stream or connection reports (UNAVAILABLE, CANCELED,
// INTERNAL, UNKNOWN) that is not a typed worker error (see workerSentinelStatus; the worker's handler
// ends the stream with the status the unary call would return). A worker's untyped internal error
// looks like a broken stream's: the unary call asks again and returns the worker's answer.
func streamBroke(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.Canceled, codes.Internal, codes.Unknown:
		return !workerSentinelStatus(st)
	}
	return false
}

// take returns an idle stream (nil when there is none); ok is false when the worker does not serve
// GetStream.
func (p *getStreams) take() (s *getStream, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unsupported {
		return nil, false
	}
	if n := len(p.idle); n > 0 {
		s = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	return s, true
}

// put keeps s for the next call, or closes it when enough streams are idle.
func (p *getStreams) put(s *getStream) {
	p.mu.Lock()
	if len(p.idle) < maxIdleStreams {
		p.idle = append(p.idle, s)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	s.close()
}

// closeIdle closes the idle streams.
func (p *getStreams) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}
