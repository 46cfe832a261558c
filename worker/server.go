package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// ServerConfig configures a Server. The zero value serves a libp2p node and logs to slog.Default().
type ServerConfig struct {
	// NewNode builds the node on Configure. Default: NewLibp2pNode with its DHT RPCs measured (the
	// latency histograms and DHT contacts of Stats; another factory's node reports none).
	NewNode NodeFactory
	// Logger receives the server's and the node's logs. Default slog.Default().
	Logger *slog.Logger
	// Clock gives DHT time, used to drop expired records from the state directory before they are
	// reloaded. Default dht.SystemClock.
	Clock dht.Clock
}

// Server implements the ipcpb.Worker service over one Node. It is configured once (Configure), serves
// calls concurrently, and is drained once (Shutdown or Close); Done is closed after the drain. It
// measures the parent's calls (counts, errors and latency per kind) and reports them in Stats with
// the node's counters, its peers and the process's memory.
type Server struct {
	ipcpb.UnimplementedWorkerServer

	newNode NodeFactory
	logger  *slog.Logger
	clock   dht.Clock
	start   time.Time
	stats   *serverStats

	mu          sync.Mutex // guards the fields below; held only around reads and swaps
	configuring bool
	node        Node
	state       *state
	closed      bool

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
}

// NewServer returns an unconfigured server.
func NewServer(cfg ServerConfig) *Server {
	stats := &serverStats{}
	if cfg.NewNode == nil {
		cfg.NewNode = instrumentedNode(&stats.dht)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = dht.SystemClock{}
	}
	return &Server{
		newNode: cfg.NewNode,
		logger:  cfg.Logger,
		clock:   cfg.Clock,
		start:   time.Now(),
		stats:   stats,
		done:    make(chan struct{}),
	}
}

// Done is closed once the server has been drained (Shutdown RPC or Close).
func (s *Server) Done() <-chan struct{} { return s.done }

// Configure opens the state directory, starts the node on the persisted records and returns once it
// is ready (host listening, bootstrap finished).
func (s *Server) Configure(ctx context.Context, req *ipcpb.ConfigureRequest) (*ipcpb.ConfigureResponse, error) {
	resp, err := s.configure(ctx, req)
	if err != nil {
		s.logger.Error("configure failed", "error", err)
	}
	return resp, toStatus(err)
}

func (s *Server) configure(ctx context.Context, req *ipcpb.ConfigureRequest) (*ipcpb.ConfigureResponse, error) {
	if v := req.GetVersion(); v != ipcpb.ConfigVersion {
		return nil, fmt.Errorf("%w: got %d, this worker speaks %d", ErrUnsupportedVersion, v, ipcpb.ConfigVersion)
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, fmt.Errorf("configure: %w", dht.ErrShutdown)
	case s.configuring || s.node != nil:
		s.mu.Unlock()
		return nil, ErrAlreadyConfigured
	}
	s.configuring = true
	s.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			s.mu.Lock()
			s.configuring = false
			s.mu.Unlock()
		}
	}()

	cfg := &ipcpb.NodeConfig{}
	if c := req.GetConfig(); c != nil {
		cfg = proto.Clone(c).(*ipcpb.NodeConfig)
	}
	var st *state
	if dir := cfg.GetStateDir(); dir != "" {
		var err error
		if st, err = openState(dir, s.logger); err != nil {
			return nil, err
		}
		if cfg.GetIdentityPath() == "" {
			cfg.IdentityPath = filepath.Join(dir, identityFile)
		}
	}
	nodeID, err := st.nodeID()
	if err != nil {
		return nil, errors.Join(err, st.close())
	}
	spec := NodeSpec{Config: cfg, NodeID: nodeID, Logger: s.logger}
	if st != nil && !cfg.GetNoPersistRecords() {
		if err := st.records.prune(s.clock.Now()); err != nil {
			return nil, errors.Join(err, st.close())
		}
		spec.Persister = st.records
	}
	node, err := s.newNode(ctx, spec)
	if err != nil {
		return nil, errors.Join(err, st.close())
	}
	reloaded := 0
	if spec.Persister != nil {
		reloaded = st.records.loaded
	}
	s.mu.Lock()
	if s.closed { // Close raced with Configure: drop what was built.
		s.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return nil, errors.Join(fmt.Errorf("configure: %w", dht.ErrShutdown), node.Close(cctx), st.close())
	}
	s.node, s.state = node, st
	s.configuring = false
	s.mu.Unlock()
	ok = true

	raw, b58 := node.PeerID()
	maddrs, err := node.VisibleMaddrs(ctx, false)
	if err != nil {
		return nil, err
	}
	id := node.NodeID()
	s.logger.Info("node ready", "peer_id", b58, "node_id", id.String(), "maddrs", maddrs,
		"reloaded_records", reloaded)
	return &ipcpb.ConfigureResponse{
		Peer:            &ipcpb.PeerInfo{PeerId: []byte(raw), PeerIdB58: b58, VisibleMaddrs: maddrs},
		NodeId:          id.Bytes(),
		ReloadedRecords: uint64(reloaded),
	}, nil
}

// current returns the configured node, or an error when there is none (yet or any more).
func (s *Server) current() (Node, *state, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, nil, dht.ErrShutdown
	case s.node == nil:
		return nil, nil, ErrNotConfigured
	}
	return s.node, s.state, nil
}

// Get looks one key up.
func (s *Server) Get(ctx context.Context, req *ipcpb.GetRequest) (_ *ipcpb.GetResponse, err error) {
	t0 := time.Now()
	defer func() { s.stats.ops[opGet].done(t0, err) }()
	node, _, err := s.current()
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetKey() == nil {
		return nil, toStatus(fmt.Errorf("%w: get without a key", dht.ErrInvalidArgument))
	}
	r, err := node.Get(ctx, keyFromProto(req.GetKey()), getOptionsFromProto(req.GetOptions()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &ipcpb.GetResponse{Result: resultToProto(r)}, nil
}

// GetStream answers the Get requests of one stream in order, each as Get does, until the caller
// closes the stream or cancels it. An error ends the stream with the status Get returns (the caller
// opens another stream).
func (s *Server) GetStream(stream grpc.BidiStreamingServer[ipcpb.GetRequest, ipcpb.GetResponse]) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp, err := s.Get(ctx, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// GetMany looks several keys up; results are in request order.
func (s *Server) GetMany(ctx context.Context, req *ipcpb.GetManyRequest) (_ *ipcpb.GetManyResponse, err error) {
	t0 := time.Now()
	defer func() { s.stats.ops[opGetMany].done(t0, err) }()
	node, _, err := s.current()
	if err != nil {
		return nil, toStatus(err)
	}
	keys := make([]dht.Key, len(req.GetKeys()))
	for i, k := range req.GetKeys() {
		keys[i] = keyFromProto(k)
	}
	rs, err := node.GetMany(ctx, keys, getOptionsFromProto(req.GetOptions()))
	if err != nil {
		return nil, toStatus(err)
	}
	out := &ipcpb.GetManyResponse{Results: make([]*ipcpb.GetResult, len(rs))}
	for i, r := range rs {
		out.Results[i] = resultToProto(r)
	}
	return out, nil
}

// Store stores one item. With a state directory, every replica this node keeps is in the
// database (written, not necessarily fsynced) before the reply says it was accepted.
func (s *Server) Store(ctx context.Context, req *ipcpb.StoreRequest) (_ *ipcpb.StoreResponse, err error) {
	t0 := time.Now()
	defer func() { s.stats.ops[opStore].done(t0, err) }()
	out, err := s.storeMany(ctx, []*ipcpb.StoreItem{req.GetItem()})
	if err != nil {
		return nil, toStatus(err)
	}
	return &ipcpb.StoreResponse{Result: out[0]}, nil
}

// StoreMany stores several items; results are in request order.
func (s *Server) StoreMany(ctx context.Context, req *ipcpb.StoreManyRequest) (_ *ipcpb.StoreManyResponse, err error) {
	t0 := time.Now()
	defer func() { s.stats.ops[opStoreMany].done(t0, err) }()
	out, err := s.storeMany(ctx, req.GetItems())
	if err != nil {
		return nil, toStatus(err)
	}
	return &ipcpb.StoreManyResponse{Results: out}, nil
}

func (s *Server) storeMany(ctx context.Context, items []*ipcpb.StoreItem) ([]*ipcpb.StoreResult, error) {
	node, _, err := s.current()
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no items to store", dht.ErrInvalidArgument)
	}
	batch := make([]dht.StoreItem, len(items))
	for i, it := range items {
		if batch[i], err = storeItemFromProto(it); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	var results []dht.StoreResult
	if len(batch) == 1 {
		var r dht.StoreResult
		r, err = node.Store(ctx, batch[0])
		results = []dht.StoreResult{r}
	} else {
		results, err = node.StoreMany(ctx, batch)
	}
	if err != nil {
		return nil, err
	}
	if len(results) != len(items) {
		return nil, fmt.Errorf("node returned %d results for %d items", len(results), len(items))
	}
	out := make([]*ipcpb.StoreResult, len(results))
	for i, r := range results {
		out[i] = storeResultToProto(r)
	}
	return out, nil
}

// PeerID returns the host's peer ID.
func (s *Server) PeerID(_ context.Context, _ *ipcpb.PeerIDRequest) (*ipcpb.PeerIDResponse, error) {
	node, _, err := s.current()
	if err != nil {
		return nil, toStatus(err)
	}
	raw, b58 := node.PeerID()
	return &ipcpb.PeerIDResponse{PeerId: []byte(raw), PeerIdB58: b58}, nil
}

// VisibleMaddrs returns the host's visible multiaddrs.
func (s *Server) VisibleMaddrs(ctx context.Context, req *ipcpb.VisibleMaddrsRequest) (*ipcpb.VisibleMaddrsResponse, error) {
	node, _, err := s.current()
	if err != nil {
		return nil, toStatus(err)
	}
	m, err := node.VisibleMaddrs(ctx, req.GetLatest())
	if err != nil {
		return nil, toStatus(err)
	}
	return &ipcpb.VisibleMaddrsResponse{Maddrs: m}, nil
}

// Stats returns the node's counters, the parent's calls, the latency of the DHT RPCs (when the node
// is the default, instrumented one), the host's peers and DHT contacts, and the process's memory.
func (s *Server) Stats(_ context.Context, _ *ipcpb.StatsRequest) (*ipcpb.StatsResponse, error) {
	node, st, err := s.current()
	if err != nil {
		return nil, toStatus(err)
	}
	ns := node.Stats()
	out := &ipcpb.StatsResponse{
		RoutingTableSize: uint64(ns.RoutingTableSize),
		StoredKeys:       uint64(ns.StoredKeys),
		CachedKeys:       uint64(ns.CachedKeys),
		ConnectedPeers:   uint64(ns.ConnectedPeers),
		PersistedRecords: uint64(st.count()),
		Pid:              int64(os.Getpid()),
		UptimeSeconds:    time.Since(s.start).Seconds(),
	}
	timed := s.stats.dht.wrapped.Load()
	for _, r := range ns.RPCs {
		c := &ipcpb.RPCCounter{
			Name: r.Name, Sent: r.Sent, SentFailed: r.SentFailed,
			Received: r.Received, ReceivedFailed: r.ReceivedFailed,
		}
		if i := rpcIndex(r.Name); timed && i >= 0 {
			c.SentLatency, c.ReceivedLatency = s.stats.dht.sent[i].proto(), s.stats.dht.received[i].proto()
		}
		out.Rpcs = append(out.Rpcs, c)
	}
	out.Ops = s.stats.opsProto()
	out.DhtOps = []*ipcpb.DHTOpCounter{dhtOpProto("get", ns.Gets), dhtOpProto("store", ns.Stores)}
	out.Peers = peersProto(node, s.stats.dht.contacts.snapshot(), time.Now())
	out.Nat = natProto(node)
	processStats(out)
	return out, nil
}

func dhtOpProto(name string, c dht.OpCounts) *ipcpb.DHTOpCounter {
	return &ipcpb.DHTOpCounter{Name: name, Ops: c.Ops, Rounds: c.Rounds, Rpcs: c.RPCs}
}

// AddPeers hands the node more peers (Node.AddPeers): a malformed maddr fails the call with
// INVALID_ARGUMENT; peers that cannot be reached are reported per maddr.
func (s *Server) AddPeers(ctx context.Context, req *ipcpb.AddPeersRequest) (*ipcpb.AddPeersResponse, error) {
	node, _, err := s.current()
	if err != nil {
		return nil, toStatus(err)
	}
	maddrs := req.GetMaddrs()
	if len(maddrs) == 0 {
		return nil, toStatus(fmt.Errorf("%w: AddPeers without maddrs", dht.ErrInvalidArgument))
	}
	res, err := node.AddPeers(ctx, maddrs)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &ipcpb.AddPeersResponse{Answered: uint32(res.Answered)}
	for i, m := range maddrs {
		o := &ipcpb.AddPeerOutcome{Maddr: m, Connected: true}
		if i < len(res.ConnectErrs) && res.ConnectErrs[i] != nil {
			o.Connected, o.Error = false, res.ConnectErrs[i].Error()
		}
		out.Peers = append(out.Peers, o)
	}
	s.logger.Info("added peers", "maddrs", maddrs, "answered", res.Answered)
	return out, nil
}

// Shutdown drains the server; the process exits after the reply.
func (s *Server) Shutdown(ctx context.Context, _ *ipcpb.ShutdownRequest) (*ipcpb.ShutdownResponse, error) {
	if err := s.Close(ctx); err != nil {
		s.logger.Warn("shutdown", "error", err)
	}
	return &ipcpb.ShutdownResponse{}, nil
}

// Close drains the server once: the node stops (its host stops listening), the state is flushed and
// closed, later calls fail with dht.ErrShutdown, and Done is closed. Later calls return the first
// result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		node, st := s.node, s.state
		s.node, s.state = nil, nil
		s.mu.Unlock()
		var errs []error
		if node != nil {
			errs = append(errs, node.Close(ctx))
		}
		errs = append(errs, st.close())
		s.closeErr = errors.Join(errs...)
		close(s.done)
	})
	return s.closeErr
}
