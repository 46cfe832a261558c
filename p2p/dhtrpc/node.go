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

// NewNode starts a dht.Node on host in the order dht's usage protocol asks for: dht.New (a
// Transport over host, the host's peer ID), then, unless cfg.ClientMode, the DHTProtocol handlers,
// then Bootstrap (the initial peers ping the node back, so the handlers must answer first). ctx
// bounds the bootstrap. On error the handlers are removed and the node is closed; the host stays
// the caller's.
func NewNode(ctx context.Context, host *p2p.Host, cfg dht.Config) (*Node, error) {
	if host == nil {
		return nil, errors.New("dhtrpc: NewNode needs a host")
	}
	node, err := dht.New(cfg, PeerIDFromP2P(host.ID()), NewTransport(host))
	if err != nil {
		return nil, err
	}
	n := &Node{Node: node, host: host}
	if !cfg.ClientMode {
		if err := Serve(host, node); err != nil {
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
