package dhtsim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hivemind-go/hivemind/dht"
)

// DefaultBootstrapPeers is the number of earlier nodes a cluster node bootstraps from by default.
const DefaultBootstrapPeers = 3

// ClusterConfig configures NewCluster. Zero fields mean their defaults; it is passed by value.
type ClusterConfig struct {
	// Size is the number of nodes to start.
	Size int
	// Node is the template of every node's config. Per node, NodeID is set to Network.NodeID(i)
	// (when the template's is zero), InitialPeers to the chosen earlier nodes (appended to the
	// template's), and Logger to Network.Logger(peer) when the template's is nil.
	Node dht.Config
	// BootstrapPeers is how many earlier nodes each node bootstraps from, chosen at random (seeded)
	// among the nodes already started. Default DefaultBootstrapPeers.
	BootstrapPeers int
	// Star makes node 0 the only bootstrap peer of every other node (a swarm grown from one
	// bootstrap node, which is then every node's one way back in); BootstrapPeers is ignored.
	Star bool
	// JoinConcurrency is how many nodes bootstrap at once; each of them only knows nodes started
	// before its batch. Default 1 (one after another, like hivemind's tests).
	JoinConcurrency int
	// Progress, if set, is called after each batch of joins with the number of nodes started so
	// far (for progress reports of large simulations).
	Progress func(started int)
}

// Validate reports every invalid field of c.
func (c ClusterConfig) Validate() error {
	var errs []error
	if c.Size < 0 {
		errs = append(errs, fmt.Errorf("Size %d is negative", c.Size))
	}
	if c.BootstrapPeers < 0 {
		errs = append(errs, fmt.Errorf("BootstrapPeers %d is negative", c.BootstrapPeers))
	}
	if c.JoinConcurrency < 0 {
		errs = append(errs, fmt.Errorf("JoinConcurrency %d is negative", c.JoinConcurrency))
	}
	if err := c.Node.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Node: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func (c ClusterConfig) withDefaults() ClusterConfig {
	if c.BootstrapPeers == 0 {
		c.BootstrapPeers = DefaultBootstrapPeers
	}
	if c.JoinConcurrency == 0 {
		c.JoinConcurrency = 1
	}
	return c
}

// Cluster is a set of real dht.Nodes on one Network, the harness of tests and simulations. Node i
// has peer ID Network.PeerID(i). Close it when done.
type Cluster struct {
	net *Network
	cfg ClusterConfig

	growing sync.Mutex // serializes NewCluster's and Add's joins

	mu    sync.Mutex
	nodes []*dht.Node
	eps   []*Endpoint
}

// NewCluster starts cfg.Size nodes on net, bootstrapping node i from up to cfg.BootstrapPeers
// nodes among 0..i-1 (node 0 starts alone). ctx bounds the bootstraps. On error every node
// started so far is closed.
func NewCluster(ctx context.Context, net *Network, cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{net: net, cfg: cfg.withDefaults()}
	c.growing.Lock()
	defer c.growing.Unlock()
	if err := c.grow(ctx, cfg.Size); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// Add starts one more node, bootstrapped like the others, and returns its index.
func (c *Cluster) Add(ctx context.Context) (int, error) {
	c.growing.Lock()
	defer c.growing.Unlock()
	c.mu.Lock()
	i := len(c.nodes)
	c.mu.Unlock()
	if err := c.grow(ctx, 1); err != nil {
		return 0, err
	}
	return i, nil
}

// grow starts count nodes after the existing ones, in batches of JoinConcurrency.
func (c *Cluster) grow(ctx context.Context, count int) error {
	c.mu.Lock()
	start := len(c.nodes)
	c.nodes = append(c.nodes, make([]*dht.Node, count)...)
	c.eps = append(c.eps, make([]*Endpoint, count)...)
	c.mu.Unlock()
	end := start + count
	for batch := start; batch < end; batch += c.cfg.JoinConcurrency {
		batchEnd := min(batch+c.cfg.JoinConcurrency, end)
		errs := make([]error, batchEnd-batch)
		var wg sync.WaitGroup
		for i := batch; i < batchEnd; i++ {
			wg.Go(func() { errs[i-batch] = c.startNode(ctx, i, batch) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			// Undo the whole batch: close the nodes of it that did start.
			c.mu.Lock()
			started, eps := c.nodes[batch:batchEnd], c.eps[batch:batchEnd]
			c.nodes, c.eps = c.nodes[:batch], c.eps[:batch]
			c.mu.Unlock()
			for i, n := range started {
				if n != nil {
					eps[i].Serve(nil)
					c.net.Leave(eps[i].ID())
					err = errors.Join(err, n.Close())
				}
			}
			return err
		}
		if c.cfg.Progress != nil {
			c.cfg.Progress(batchEnd)
		}
	}
	return nil
}

// startNode starts node i, bootstrapping it from nodes among 0..known-1.
func (c *Cluster) startNode(ctx context.Context, i, known int) error {
	peer := c.net.PeerID(i)
	ep, err := c.net.Join(peer)
	if err != nil {
		return err
	}
	ncfg := c.cfg.Node
	if ncfg.NodeID == (dht.ID{}) {
		ncfg.NodeID = c.net.NodeID(i)
	}
	if ncfg.Logger == nil {
		ncfg.Logger = c.net.Logger(peer)
	}
	ncfg.InitialPeers = append(append([]dht.PeerID(nil), ncfg.InitialPeers...), c.bootstrapPeers(i, known)...)
	if len(ncfg.InitialPeers) == 0 {
		ncfg.InitialPeers = nil
	}
	node, err := dht.New(ncfg, peer, ep)
	if err != nil {
		c.net.Leave(peer)
		return fmt.Errorf("dhtsim: start node %d: %w", i, err)
	}
	// Serve before bootstrapping: the validated bootstrap ping makes the peer ping us back.
	if !ncfg.ClientMode {
		ep.Serve(node)
	}
	if err := node.Bootstrap(ctx); err != nil {
		ep.Serve(nil)
		c.net.Leave(peer)
		return fmt.Errorf("dhtsim: start node %d: %w", i, errors.Join(err, node.Close()))
	}
	c.mu.Lock()
	c.nodes[i], c.eps[i] = node, ep
	c.mu.Unlock()
	return nil
}

// bootstrapPeers picks up to BootstrapPeers distinct nodes among 0..known-1, deterministically
// (node 0 alone with Star).
func (c *Cluster) bootstrapPeers(i, known int) []dht.PeerID {
	if c.cfg.Star {
		if known == 0 {
			return nil
		}
		return []dht.PeerID{c.net.PeerID(0)}
	}
	want := min(c.cfg.BootstrapPeers, known)
	picked := make(map[int]bool, want)
	out := make([]dht.PeerID, 0, want)
	for attempt := uint64(0); len(out) < want; attempt++ {
		j := int(Rand(c.net.cfg.Seed, 0xb0075, uint64(i), attempt) % uint64(known))
		if attempt > uint64(8*want) { // dense case: take the rest in order
			j = int(attempt) % known
		}
		if !picked[j] {
			picked[j] = true
			out = append(out, c.net.PeerID(j))
		}
	}
	return out
}

// Network returns the cluster's network.
func (c *Cluster) Network() *Network { return c.net }

// Len returns the number of nodes.
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Node returns node i.
func (c *Cluster) Node(i int) *dht.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Endpoint returns node i's endpoint.
func (c *Cluster) Endpoint(i int) *Endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eps[i]
}

// Nodes returns a copy of the node list.
func (c *Cluster) Nodes() []*dht.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*dht.Node(nil), c.nodes...)
}

// Kill makes node i unreachable (its process is "gone"; the dht.Node keeps running until Close).
func (c *Cluster) Kill(i int) { c.net.Kill(c.net.PeerID(i)) }

// Revive undoes Kill.
func (c *Cluster) Revive(i int) { c.net.Revive(c.net.PeerID(i)) }

// Close stops serving and closes every node, concurrently, and returns the joined errors.
func (c *Cluster) Close() error {
	c.mu.Lock()
	nodes, eps := c.nodes, c.eps
	c.nodes, c.eps = nil, nil
	c.mu.Unlock()
	for _, ep := range eps {
		if ep != nil {
			ep.Serve(nil)
		}
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n != nil {
			wg.Go(func() { errs[i] = n.Close() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}
