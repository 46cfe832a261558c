package dhtrpc

import (
	"context"
	"errors"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
)

// Node is a dht.Node served as DHTProtocol on a p2p.Host. It embeds the node, so the whole
// dht.Node API (Get, Store, FindNearestNodes, Stats, ...) is available; Close also unregisters
// the handlers. The host stays the caller's to close.
type Node struct {
	*dht.Node
	host   *p2p.Host
	served bool
}

// NodeOptions are the optional parts of NewNodeWith: wrappers around the node's two sides of
// DHTProtocol, a seam for fault injection (delays, partitions) and instrumentation that sees every
// DHT RPC without a copy of NewNode. The zero value wraps nothing; a nil wrapper costs nothing (the
// node is built exactly as NewNode builds it).
type NodeOptions struct {
	// WrapTransport, if set, is called once, before dht.New, with the Transport over the host; the
	// node sends every RPC (bootstrap, lookups, stores, pings, refresh) through the Transport it
	// returns, which must be non-nil, safe for concurrent use, and keep dht.Transport's contract
	// (return when ctx is done; failures wrap dht.ErrNoResponse, or dht.ErrNoAddress when the peer
	// could not be dialled for want of an address, which the node's blacklist and routing table
	// rely on).
	WrapTransport func(dht.Transport) dht.Transport
	// WrapHandler, if set, is called once, after dht.New and before Serve, with the node; the
	// Handler it returns (non-nil, safe for concurrent use) is served as DHTProtocol instead of the
	// node. An error that Handler returns is sent to the caller as the reply's error text. Never
	// called for a client-mode node, which serves nothing.
	WrapHandler func(dht.Handler) dht.Handler
}

// NewNode starts a dht.Node on host in the order dht's usage protocol asks for: dht.New (a
// Transport over host, the host's peer ID), then, unless cfg.ClientMode, the DHTProtocol handlers,
// then Bootstrap (the initial peers ping the node back, so the handlers must answer first). ctx
// bounds the bootstrap. On error the handlers are removed and the node is closed; the host stays
// the caller's.
func NewNode(ctx context.Context, host *p2p.Host, cfg dht.Config) (*Node, error) {
	return NewNodeWith(ctx, host, cfg, NodeOptions{})
}

// NewNodeWith is NewNode with the transport and the served handler wrapped as opts says.
func NewNodeWith(ctx context.Context, host *p2p.Host, cfg dht.Config, opts NodeOptions) (*Node, error) {
	if host == nil {
		return nil, errors.New("dhtrpc: NewNode needs a host")
	}
	var tr dht.Transport = NewTransport(host)
	if opts.WrapTransport != nil {
		if tr = opts.WrapTransport(tr); tr == nil {
			return nil, errors.New("dhtrpc: NodeOptions.WrapTransport returned nil")
		}
	}
	node, err := dht.New(cfg, PeerIDFromP2P(host.ID()), tr)
	if err != nil {
		return nil, err
	}
	n := &Node{Node: node, host: host}
	if !cfg.ClientMode {
		var h dht.Handler = node
		if opts.WrapHandler != nil {
			if h = opts.WrapHandler(node); h == nil {
				return nil, errors.Join(errors.New("dhtrpc: NodeOptions.WrapHandler returned nil"), node.Close())
			}
		}
		if err := Serve(host, h); err != nil {
			return nil, errors.Join(err, node.Close())
		}
		n.served = true
	}
	if err := node.Bootstrap(ctx); err != nil {
		return nil, errors.Join(err, n.Close())
	}
	return n, nil
}

// Close unregisters the handlers (if the node served any) and closes the dht.Node. Idempotent.
func (n *Node) Close() error {
	if n.served {
		Unserve(n.host)
	}
	return n.Node.Close()
}
