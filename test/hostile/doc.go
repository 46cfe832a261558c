// Package hostile attacks a DHT node with a peer that speaks the wire protocol maliciously, and fuzzes
// the decoders that read bytes from the parent, a worker or a file. Everything is in the tests.
//
// # Arena
//
// Each attack gets a fresh target (a p2p.Host on loopback serving a dht.Node through p2p/dhtrpc,
// with an RSA validator and storage bounds of 32 MiB and 20,000 entries), an honest peer (a served
// dht.Node bootstrapped from the target) and an attacker: a raw go-libp2p host that opens streams
// under the DHT's handle names (DHTProtocol.rpc_store, ...) and writes whatever bytes it likes. Before
// and after each attack the honest peer must be served: a ping, and a record it stores that the
// target holds. The peak Go heap during the attack is printed and its growth bounded.
//
// # What each attack proves
//
//   - oversized-length-prefix, length-varint-overflow, truncated-frame, garbage-envelope,
//     malformed-envelopes (wrong arm, short call ID, missing required fields), wrong-stream-marker:
//     each bad frame ends its stream (reset or closed) without a reply, nothing is allocated for an
//     announced size over the cap.
//   - stalled-frame: a peer that stops mid-frame is cut off after the stream idle timeout.
//   - invalid-protobuf: a well-framed payload that is not the request message gets an error reply.
//   - invalid-msgpack: items whose subkey or dictionary is not msgpack are refused one by one and
//     cannot poison an honest dictionary; opaque values are stored as sent (as hivemind does).
//   - store-flood-many-keys, store-flood-huge-values: a store over MaxRequestItems is an error, a
//     value over the frame cap resets its stream, floods never take the storage over its bounds.
//   - far-future-flood: records expiring in 1e300 s fill the storage; known bug
//     far-future-flood-evicts-honest-records while they push honest records out.
//   - expirations: NaN, infinite and past expirations are refused.
//   - forged-signatures: a record under an owner's marker with a forged, missing or foreign signature
//     is refused; the owner's record stays.
//   - ping-flood: idle streams over the per-peer limit are refused, a ping flood does not keep an
//     honest peer from being served.
//   - fake-node-ids: one peer pinging under many node IDs; known bug one-peer-many-node-ids while it
//     occupies more than one routing-table slot (and so can take every replica slot of a store).
//   - poisoned-find: a peer answering FIND with unreachable fake neighbours: lookups still end, no
//     fake enters the routing table.
//
// Rows go to the reliability table (test/chaos/report) as hostile/<attack>: runs are attempts,
// failed-as-expected the attempts that got their clear rejection, unclear the others.
//
// # Fuzz targets
//
// FuzzClientReplies (a worker's replies as ipc.Client decodes them), FuzzWorkerRequests (the parent's
// requests as worker.Server decodes them, on a real dht.Node), FuzzWorkerStateReload (records.db and
// node_id as a starting worker reads them), FuzzRSAKeyFile (validator.ParseRSAPrivateKey),
// FuzzSchemaConfig (the schema validator's JSON configuration), FuzzAlbertRecords (the albert
// example's metrics and progress records as peers store them).
package hostile
