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
//     cannot poison an honest dictionary (the honest peer still reads its dictionary); opaque values
//     are stored as sent (as hivemind does).
//   - store-flood-many-keys, store-flood-huge-values: a store over MaxRequestItems is an error, a
//     value over the frame cap resets its stream, floods never take the storage over its bounds.
//   - far-future-flood: records expiring in 1e300 s are refused item by item (dht.Config
//     MaxExpirationHorizon, default a week), so they cannot fill the storage and push out an honest
//     record expiring in an hour, which the target still holds afterwards.
//   - near-horizon-flood: one peer floods more records than the storage holds, each expiring a
//     minute inside the horizon (so no rule refuses them). The storage evicts fairly between the
//     peers that stored its records (the earliest-expiring record of the peer holding the largest
//     share goes first; see dht.TimedStorage), so the flood evicts the attacker's own records and
//     the honest record expiring in an hour stays; the storage stays within its bound.
//   - expirations: NaN, infinite, past and beyond-the-horizon expirations are refused; one a day
//     ahead is stored.
//   - forged-signatures: a record under an owner's marker with a forged, missing or foreign signature
//     is refused; the owner's record stays.
//   - ping-flood: idle streams over the per-peer limit are refused, a ping flood does not keep an
//     honest peer from being served.
//   - fake-node-ids: one peer pinging under 500 node IDs holds at most one routing-table slot, under
//     its latest ID (a new ID replaces the peer's old entry), so it cannot take every replica slot
//     of a store.
//   - poisoned-find: a peer answering FIND with unreachable fake neighbours: lookups still end, no
//     fake enters the routing table.
//
// Rows go to the reliability table (test/chaos/report) as hostile/<attack>: runs are attempts,
// failed-as-expected the attempts that got their clear rejection, unclear the others. No attack
// is a known bug: an attempt without its clear rejection, or a broken invariant (an honest record
// lost, a poisoned dictionary, extra routing-table slots), fails the test.
//
// # Fuzz targets
//
// FuzzClientReplies (a worker's replies as ipc.Client decodes them), FuzzWorkerRequests (the parent's
// requests as worker.Server decodes them, on a real dht.Node), FuzzWorkerStateReload (records.db and
// node_id as a starting worker reads them), FuzzRSAKeyFile (validator.ParseRSAPrivateKey),
// FuzzSchemaConfig (the schema validator's JSON configuration), FuzzAlbertRecords (the albert
// example's metrics and progress records as peers store them).
package hostile
