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
//  1. [New] builds the node and sends nothing: it validates the Config, loads the records of
//     Config.Persister (if any) into the storage and starts the background maintenance (the
//     routing-table refresh; the cache refresh starts once a cached value is used). The node answers
//     its [Handler] methods from this point on.
//  2. Serve it: register the node as the Handler of its peer ID (p2p/dhtrpc.Serve, dhtsim's
//     Endpoint.Serve), unless Config.ClientMode.
//  3. [Node.Bootstrap] joins the DHT: validated pings to Config.InitialPeers, which ping the node
//     back (hence step 2 first), then a lookup of its own ID. Its error wraps ErrBootstrapFailed (and
//     ErrValidation for a peer that answered but failed validation) and names each peer that failed.
//     [Node.AddInitialPeers] joins later: a node that bootstrapped alone is handed peers of a swarm,
//     which it also keeps as initial peers for the routing-table refresh to re-contact.
//  4. Use the node: [Node.Get], [Node.GetMany], [Node.Store], [Node.StoreMany] (the [Client] API),
//     [Node.FindNearestNodes], [Node.Stats]. Every call takes a context and is safe for concurrent use.
//  5. [Node.Close] stops serving, cancels the node's RPCs and background work, and waits for every
//     goroutine the node started. Close the node also when Bootstrap failed.
//
// p2p/dhtrpc.NewNode does steps 1-3 on a libp2p host. A client-mode node serves nothing: New then
// Bootstrap.
//
// # Local storage against hostile peers
//
// Unlike hivemind's, a node's storage and cache are bounded (Config.MaxStorageEntries,
// MaxStorageBytes, CacheSize) and evict fairly between the peers that stored their records: over a
// bound, the earliest-expiring record of the peer holding the largest share goes first, where
// hivemind evicts the earliest expiration whoever stored it (the two agree when one peer, or the
// node alone, stores everything). Inbound STOREs expiring beyond Config.MaxExpirationHorizon are
// refused, and found values beyond it are not cached. Nothing of this changes the wire protocol;
// see [LocalStorage] and [TimedStorage].
package dht
