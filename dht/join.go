package dht

import (
	"context"
	"fmt"
	"slices"
)

// InitialPeers returns the node's initial peers: cfg.InitialPeers followed by those AddInitialPeers
// added, without repeats. The caller owns the returned slice.
func (n *Node) InitialPeers() []PeerID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.initialPeers)
}

// AddInitialPeers hands a running node more peers to join the DHT through: a node that bootstrapped
// alone (no initial peers, or none reachable) joins a swarm this way. It appends the peers new to
// the node's initial peers, so that from now on the routing-table refresh re-contacts each of them
// whenever it is missing from the routing table (see reconnectInitialPeers), pings every given peer
// (without validation, as the refresh does; each ping is bounded by WaitTimeout), and, when one
// answered, looks up the node's own ID as Bootstrap does, bounded by BootstrapTimeout (the lookup
// carries on in the background when the budget runs out). It returns how many of the given peers
// answered the ping; none answering is not an error (the peers are kept, the refresh tries again).
//
// It may be called before or after Bootstrap, any number of times, concurrently with everything
// else. The node's own peer ID is ignored and a peer given twice counts once. Errors: an empty peer
// ID wraps ErrInvalidArgument (nothing is added); a closed node returns ErrShutdown; when ctx ends
// during the pings, its error (the peers stay added).
func (n *Node) AddInitialPeers(ctx context.Context, peers []PeerID) (answered int, err error) {
	if n.isClosed() {
		return 0, ErrShutdown
	}
	var fresh []PeerID // the given peers, without self and repeats
	for i, p := range peers {
		switch {
		case p == "":
			return 0, fmt.Errorf("%w: AddInitialPeers: entry %d is an empty peer ID", ErrInvalidArgument, i)
		case p == n.self, slices.Contains(fresh, p):
			continue
		}
		fresh = append(fresh, p)
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	n.mu.Lock()
	grown := slices.Clip(n.initialPeers) // appending copies: earlier snapshots stay as they were
	for _, p := range fresh {
		if !slices.Contains(grown, p) {
			grown = append(grown, p)
		}
	}
	n.initialPeers = grown
	n.mu.Unlock()

	pingCtx, stop := n.withLifetime(ctx)
	answered = n.pingPeers(pingCtx, fresh)
	stop()
	// From now on the refresh re-contacts the initial peers, the ones just added included.
	n.bootstrapped.Store(true)
	n.log.Debug("dht: added initial peers", "peers", len(fresh), "answered", answered)
	if err := ctx.Err(); err != nil {
		return answered, err
	}
	if n.isClosed() {
		return answered, ErrShutdown
	}
	if answered == 0 {
		return 0, nil
	}
	budget, cancel := context.WithTimeout(ctx, n.cfg.BootstrapTimeout)
	defer cancel()
	done := make(chan struct{})
	if !n.spawn(func(ctx context.Context) {
		defer close(done)
		if _, err := n.FindNearestNodes(ctx, []ID{n.id}, 0, false); err != nil && ctx.Err() == nil {
			n.log.Debug("dht: lookup after adding initial peers failed", "err", err)
		}
	}) {
		return answered, ErrShutdown
	}
	select {
	case <-done:
	case <-budget.Done():
	}
	return answered, nil
}
