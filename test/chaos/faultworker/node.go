package main

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/test/chaos/faults"
	"github.com/hivemind-go/hivemind/worker"
)

// newNode is the worker's node factory: it applies exit_at_start, builds the production node (its
// DHT RPCs behind the gate for a net-fault worker) and wraps it so the parent's calls obey
// call_delay.
func newNode(ctx context.Context, spec worker.NodeSpec) (worker.Node, error) {
	src := faults.NewSource(spec.Config.GetStateDir())
	if code := src.Get().ExitAtStart; code != 0 {
		spec.Logger.Error("fault point: exiting at start", "code", code)
		os.Exit(code)
	}
	var opts worker.Libp2pOptions
	if os.Getenv(EnvNetFaults) == "1" {
		opts.DHT = gateOptions(src)
	}
	n, err := worker.NewLibp2pNodeWith(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	return &slowNode{Node: n, src: src}, nil
}

// slowNode delays the parent's key/value calls by the current call_delay. Its Stats add the RPC
// counter "chaos_delayed": the number of calls held by the delay right now, so the suite knows a call
// reached the fault point.
type slowNode struct {
	worker.Node
	src     *faults.Source
	delayed atomic.Int64
}

// Stats adds the chaos_delayed counter to the node's.
func (n *slowNode) Stats() worker.NodeStats {
	s := n.Node.Stats()
	s.RPCs = append(s.RPCs, worker.RPCStats{Name: "chaos_delayed", Received: uint64(max(n.delayed.Load(), 0))})
	return s
}

// NATStatus forwards the production node's reachability and relays (worker.NATReporter).
func (n *slowNode) NATStatus() p2p.NATStatus {
	if r, ok := n.Node.(worker.NATReporter); ok {
		return r.NATStatus()
	}
	return p2p.NATStatus{Reachability: p2p.ReachabilityUnknown}
}

// delay waits the current call_delay, counted in delayed.
func (n *slowNode) delay(ctx context.Context) error {
	d := n.src.Get().CallDelay
	if d <= 0 {
		return nil
	}
	n.delayed.Add(1)
	defer n.delayed.Add(-1)
	return sleep(ctx, d)
}

func (n *slowNode) Get(ctx context.Context, key dht.Key, opts dht.GetOptions) (*dht.Result, error) {
	if err := n.delay(ctx); err != nil {
		return nil, err
	}
	return n.Node.Get(ctx, key, opts)
}

func (n *slowNode) GetMany(ctx context.Context, keys []dht.Key, opts dht.GetOptions) ([]*dht.Result, error) {
	if err := n.delay(ctx); err != nil {
		return nil, err
	}
	return n.Node.GetMany(ctx, keys, opts)
}

func (n *slowNode) Store(ctx context.Context, item dht.StoreItem) (dht.StoreResult, error) {
	if err := n.delay(ctx); err != nil {
		return dht.StoreResult{}, err
	}
	return n.Node.Store(ctx, item)
}

func (n *slowNode) StoreMany(ctx context.Context, items []dht.StoreItem) ([]dht.StoreResult, error) {
	if err := n.delay(ctx); err != nil {
		return nil, err
	}
	return n.Node.StoreMany(ctx, items)
}

// sleep waits d (nothing when d <= 0) or until ctx is done, returning ctx's error then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
