// Package dhtsim is an in-memory network for real dht.Nodes: the in-memory twin of p2p/dhtrpc, in the
// manner of hashicorp/raft's inmem_transport and etcd-io/raft's rafttest network. Tests and simulations
// of 10,000+ nodes run in one process on it.
//
// # Usage
//
//	net, err := dhtsim.NewNetwork(dhtsim.Config{Seed: seed, Latency: dhtsim.Latency{Base: 5 * time.Millisecond}})
//	ep, err := net.Join(peerID)           // ep is the node's dht.Transport
//	node, err := dht.New(cfg, peerID, ep) // sends nothing yet
//	ep.Serve(node)                        // the node's dht.Handler; client-mode nodes skip this
//	err = node.Bootstrap(ctx)             // the initial peers ping it back
//
// [NewCluster] does the above for N nodes, bootstrapping each from earlier ones.
//
// # What a call does
//
// A call from one endpoint to another: checks the caller's context; marshals the request through
// protobuf (copy on send: no pointer is shared between nodes, and byte counts are real wire sizes);
// asks the BeforeCall hook; waits the one-way latency; checks reachability at delivery time (caller and
// callee alive, same partition, callee serving); unmarshals a fresh request and runs the callee's
// handler on its own goroutine with a context that is cancelled when the caller's is; marshals and
// unmarshals the response and waits the one-way latency again. Every failure is an error wrapping
// dht.ErrNoResponse and one of this package's sentinels (the cause is kept).
//
// A lost message (DropRate, a Drop verdict of the hook) and an unreachable peer (killed, partitioned
// away) look like a timeout by default: the call ends with ErrTimeout when its context is done or after
// Config.SilentTimeout, whichever comes first. With Config.Unreachable = Refuse an unreachable peer fails
// at once with ErrUnreachable instead (a refused connection). Unknown peers and peers that serve no
// handler fail at once.
//
// # Time
//
// Latency and silent failures use time.Timer and contexts only, so testing/synctest virtualizes them:
// a simulation with realistic latencies and 3-second timeouts runs in virtual time. Without synctest,
// keep latencies zero or small.
//
// # Determinism
//
// Node and peer IDs ([Network.PeerID], [Network.NodeID]) and every random decision of a call (drop,
// jitter, the Call.Roll handed to hooks) derive from (Config.Seed, caller, callee, RPC kind, number of
// earlier calls from the caller to that callee). Goroutine scheduling is not deterministic, so
// individual runs may differ in order, but the same seed gives the same distribution of outcomes.
//
// # Cost
//
// An endpoint costs a few hundred bytes (mostly counters). A per-pair call counter map is kept only
// when randomness is used (DropRate > 0, Jitter > 0 or hooks set): about 30 bytes per peer a node
// has called. Per-node loggers are discarded unless Config.Logger is set.
//
// # Concurrency
//
// Every method of Network and Endpoint is safe for concurrent use. Hooks are called concurrently from
// the callers' goroutines and must be safe for concurrent use; they must not block.
package dhtsim
