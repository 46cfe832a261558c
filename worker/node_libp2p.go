package worker

import (
	"context"
	"errors"
)

// NewLibp2pNode builds a p2p.Host and a dht.Node from spec and bootstraps it.
func NewLibp2pNode(ctx context.Context, spec NodeSpec) (Node, error) {
	return nil, errors.New("worker: libp2p node not wired yet")
}
