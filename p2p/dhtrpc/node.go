package dhtrpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// Node is a dht.Node served as DHTProtocol on a p2p.Host. It embeds the node, so the whole
// dht.Node API (Get, Store, FindNearestNodes, Stats, ...) is available; Close also unregisters
// the handlers. The host stays the caller's to close.
type Node struct {
	*dht.Node
	host   *p2p.Host
	served bool
}

// NewNode starts a dht.Node on host: unless cfg.ClientMode it registers the DHTProtocol handlers
// first (answering pings for the node while it bootstraps), then calls dht.New with a Transport over
// host and the host's peer ID, then hands the handlers over to the node. A zero cfg.NodeID is
// replaced by a random one (the handlers must know it before the node exists). ctx bounds the
// bootstrap. On error nothing stays registered.
func NewNode(ctx context.Context, host *p2p.Host, cfg dht.Config) (*Node, error) {
	if host == nil {
		return nil, errors.New("dhtrpc: NewNode needs a host")
	}
	if cfg.NodeID == (dht.ID{}) {
		cfg.NodeID = dht.RandomID()
	}
	var starting *startingHandler
	if !cfg.ClientMode {
		starting = newStartingHandler(cfg)
		if err := Serve(host, starting); err != nil {
			return nil, err
		}
	}
	node, err := dht.New(ctx, cfg, PeerIDFromP2P(host.ID()), NewTransport(host))
	if starting != nil {
		if err != nil {
			Unserve(host)
		}
		starting.start(node) // nil on error: waiting calls fail
	}
	if err != nil {
		return nil, err
	}
	return &Node{Node: node, host: host, served: !cfg.ClientMode}, nil
}

// Close unregisters the handlers (if the node served any) and closes the dht.Node. Idempotent.
func (n *Node) Close() error {
	if n.served {
		Unserve(n.host)
	}
	return n.Node.Close()
}

// startingHandler serves a node while dht.New bootstraps it, then forwards to it. dht.New returns
// the node only after bootstrap, but a validated bootstrap ping makes the initial peer ping the new
// node back, so something must answer before the node exists: pings are answered with the node ID
// and the DHT time (exactly what the ping-back checks); STORE and FIND wait for the node.
type startingHandler struct {
	info  *dhtpb.NodeInfo
	clock dht.Clock
	ready chan struct{}
	node  *dht.Node // set before ready is closed; nil when New failed
}

var errNotStarted = errors.New("dhtrpc: node failed to start")

func newStartingHandler(cfg dht.Config) *startingHandler {
	clock := cfg.Clock
	if clock == nil {
		clock = dht.SystemClock{}
	}
	return &startingHandler{
		info:  &dhtpb.NodeInfo{NodeId: cfg.NodeID.Bytes()},
		clock: clock,
		ready: make(chan struct{}),
	}
}

// start hands the calls over to node (nil: New failed).
func (s *startingHandler) start(node *dht.Node) {
	s.node = node
	close(s.ready)
}

func (s *startingHandler) wait(ctx context.Context) (*dht.Node, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("dhtrpc: waiting for the node to start: %w", ctx.Err())
	}
	if s.node == nil {
		return nil, errNotStarted
	}
	return s.node, nil
}

func (s *startingHandler) HandlePing(ctx context.Context, from dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	select {
	case <-s.ready:
		n, err := s.wait(ctx)
		if err != nil {
			return nil, err
		}
		return n.HandlePing(ctx, from, req)
	default:
		return &dhtpb.PingResponse{Peer: s.info, DhtTime: s.clock.Now()}, nil
	}
}

func (s *startingHandler) HandleStore(ctx context.Context, from dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	n, err := s.wait(ctx)
	if err != nil {
		return nil, err
	}
	return n.HandleStore(ctx, from, req)
}

func (s *startingHandler) HandleFind(ctx context.Context, from dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	n, err := s.wait(ctx)
	if err != nil {
		return nil, err
	}
	return n.HandleFind(ctx, from, req)
}
