// Package dht is a Go implementation of hivemind's DHT node (hivemind.dht.DHTNode and DHTProtocol),
// byte-compatible with Python hivemind peers.
//
// The package does no network I/O of its own: a Node reaches other peers through a [Transport] and
// serves them as a [Handler]; p2p/dhtrpc adapts both to libp2p, dht/dhtsim runs many nodes in memory.
// DHT time (expirations, dht_time) comes from a [Clock]; timeouts come from contexts.
//
// Keys are hashed to 160-bit [ID]s exactly as hivemind does (SHA-1 of the key's msgpack encoding, or of
// the raw bytes of a raw key); values travel as msgpack (package dht/msgpack). Conflicts are resolved by
// expiration time only: a strictly later expiration wins.
//
// # Using a Node
//
//  1. Serve a Handler for the node's peer ID (unless Config.ClientMode) before calling [New]: during
//     bootstrap the initial peers ping the new node back, so pings must already be answered with its
//     node ID (set Config.NodeID, or answer with the one New will use); p2p/dhtrpc and dht/dhtsim
//     forward to the node once New returns.
//  2. [New] validates the Config, bootstraps (validated pings to the initial peers, then a lookup of
//     the node's own ID) and starts the background maintenance (routing-table refresh; cache refresh
//     once a cached value is used).
//  3. Use the node: [Node.Get], [Node.GetMany], [Node.Store], [Node.StoreMany] (the [Client] API),
//     [Node.FindNearestNodes], [Node.Stats]. Every call takes a context and is safe for concurrent use.
//  4. [Node.Close] stops serving, cancels the node's RPCs and background work, and waits for every
//     goroutine the node started.
package dht
