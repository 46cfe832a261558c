package worker

import (
	"context"
	"log/slog"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Node is what a worker serves: a DHT node together with the libp2p host it runs on. The default
// implementation (NewLibp2pNode) builds a p2p.Host and a dht.Node; NewLibp2pNodeWith builds the same
// with its DHT RPCs wrapped (fault injection, instrumentation); tests may serve another.
//
// Contract: safe for concurrent use; every ctx-taking method returns when ctx is done; Close is called
// once and releases everything (the host stops listening before Close returns).
type Node interface {
	dht.Client
	// NodeID is the node's DHT ID.
	NodeID() dht.ID
	// PeerID is the host's peer ID: raw multihash bytes and its base58 text.
	PeerID() (raw dht.PeerID, b58 string)
	// VisibleMaddrs lists the multiaddrs other peers can use, each ending in /p2p/<peer id>.
	// latest re-queries the host instead of returning the addresses known at start.
	VisibleMaddrs(ctx context.Context, latest bool) ([]string, error)
	// AddPeers hands the running node more peers, maddrs each ending in /p2p/<peer id>: the host
	// connects to them and the DHT node adds them to its initial peers, pings them and, when one
	// answers, looks up its own ID through them (dht.Node.AddInitialPeers). A malformed maddr fails
	// the call before anything is done (the error wraps ErrInvalidConfig and names it); peers the
	// host cannot connect to are reported in the result, not as an error.
	AddPeers(ctx context.Context, maddrs []string) (AddPeersResult, error)
	// Stats is a snapshot of the node's counters.
	Stats() NodeStats
	// Close stops the node and its host.
	Close(ctx context.Context) error
}

// AddPeersResult is what Node.AddPeers did.
type AddPeersResult struct {
	// Answered counts the distinct peers that answered a DHT ping.
	Answered int
	// ConnectErrs holds, for each maddr in request order, why the host could not connect to it
	// (nil when it connected).
	ConnectErrs []error
}

// NodeStats is a snapshot of a node's counters.
type NodeStats struct {
	RoutingTableSize int
	StoredKeys       int
	CachedKeys       int
	ConnectedPeers   int
	RPCs             []RPCStats
	// Gets and Stores measure the node's get and store operations (dht.Stats); zero for a node
	// that does not count them.
	Gets, Stores dht.OpCounts
}

// RPCStats counts one RPC kind (a hivemind handler name such as "rpc_find").
type RPCStats struct {
	Name           string
	Sent           uint64
	SentFailed     uint64
	Received       uint64
	ReceivedFailed uint64
}

// NodeSpec is everything a NodeFactory needs: the configuration as the parent sent it, with the
// state-dependent parts resolved by the worker.
type NodeSpec struct {
	// Config is the parent's configuration; paths in it are already resolved against the state
	// directory (IdentityPath is set whenever a state directory is).
	Config *ipcpb.NodeConfig
	// NodeID is the persisted node ID, or the zero ID for a fresh random one.
	NodeID dht.ID
	// Persister keeps the node's storage in the state directory (nil: nothing is persisted). The
	// factory passes it to dht.Config.Persister: the node loads the persisted records when it is
	// built and writes every change of its storage back before acknowledging it.
	Persister dht.Persister
	Logger    *slog.Logger
}

// NodeFactory builds and starts a node: it returns when the host listens and bootstrap finished, or
// with the reason it failed (errors wrap dht.ErrBootstrapFailed and friends).
type NodeFactory func(ctx context.Context, spec NodeSpec) (Node, error)
