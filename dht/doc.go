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
package dht
