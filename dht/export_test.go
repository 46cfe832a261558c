package dht

import "testing"

// Test helpers exported to the external tests (package dht_test), which may import packages that
// import dht (dht/validator). They exist only in the test binary.

// TestSwarm is a loopNet swarm of real Nodes.
type TestSwarm struct{ s *testSwarm }

// NewTestSwarm starts one node per config; node i > 0 bootstraps from node 0 unless its config
// names initial peers. A zero Clock means the swarm's shared fake clock.
func NewTestSwarm(t testing.TB, cfgs []Config) *TestSwarm {
	t.Helper()
	s := &testSwarm{net: newLoopNet(), clock: &fakeClock{now: 1_700_000_000}}
	for i, cfg := range cfgs {
		if cfg.Clock == nil {
			cfg.Clock = s.clock
		}
		if cfg.Logger == nil {
			cfg.Logger = quietLogger()
		}
		if cfg.RefreshInterval == 0 {
			cfg.RefreshInterval = -1
		}
		if i > 0 && cfg.InitialPeers == nil {
			cfg.InitialPeers = []PeerID{testPeer(0)}
		}
		s.add(t, cfg)
	}
	return &TestSwarm{s: s}
}

// Node returns node i.
func (w *TestSwarm) Node(i int) *Node { return w.s.nodes[i] }

// Stop takes node i off the network and closes it.
func (w *TestSwarm) Stop(i int) { w.s.stop(i) }

// Now returns the swarm's DHT time.
func (w *TestSwarm) Now() float64 { return w.s.clock.Now() }

// Advance moves the swarm's DHT time forward.
func (w *TestSwarm) Advance(seconds float64) { w.s.clock.Set(w.s.clock.Now() + seconds) }

// RoutingContacts returns the active nodes of the node's routing table, nearest to the node first.
func (n *Node) RoutingContacts() []Contact {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.table.NearestNeighbors(n.id, n.table.Len(), nil)
}
