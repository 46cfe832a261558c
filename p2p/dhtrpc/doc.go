// Package dhtrpc connects a dht.Node to a p2p.Host: it serves a dht.Handler as hivemind's
// DHTProtocol and implements dht.Transport by calling DHTProtocol on other peers, Go or Python.
//
// # Wire
//
// Three unary handlers, registered under hivemind's exact handle names (no namespace):
// DHTProtocol.rpc_ping (PingRequest → PingResponse), DHTProtocol.rpc_store (StoreRequest →
// StoreResponse) and DHTProtocol.rpc_find (FindRequest → FindResponse), over p2pd's unary envelope
// (package p2p). The caller's dht.PeerID is the raw bytes of the libp2p peer ID of the connection,
// never a field of the request. A handler error is sent to the caller as the reply's error text.
//
// # Usage
//
// NewNode does everything in the right order and is what a worker wants:
//
//	node, err := dhtrpc.NewNode(ctx, host, cfg) // dht.New, serves DHTProtocol (unless cfg.ClientMode), Bootstrap
//	defer node.Close()                            // unregisters the handlers, closes the dht.Node
//
// The order is dht's usage protocol: a validated bootstrap ping makes the initial peer ping the new
// node back, so the handlers must answer before Bootstrap; dht.New sends nothing, so the node can be
// served as soon as it exists.
//
// NewNodeWith takes NodeOptions: wrappers around the Transport the node sends through and the
// Handler served for it, so a test or a fault injector can delay, refuse or count DHT RPCs in both
// directions on a node built the usual way. Nil wrappers leave the node as NewNode builds it.
//
// The parts are available on their own: NewTransport(host) is a dht.Transport; Serve(host, handler)
// registers the three handlers, Unserve(host) removes them. Client-mode nodes register none (a peer
// calling them gets "protocol not supported", as with hivemind).
//
// # Errors
//
// A Transport call to a peer that could not be dialled because peer routing found no address for it
// returns an error wrapping dht.ErrNoAddress and p2p.ErrNoAddress: nothing reached the peer, so the
// node does not hold it against the peer. Every other failed call returns an error wrapping
// dht.ErrNoResponse and, with %w, its cause from package p2p (p2p.ErrProtocolNotSupported for a peer
// that does not serve DHTProtocol, *p2p.RemoteError for a remote handler error, p2p.ErrNoReply, the
// context's error, a dial error) or ErrInvalidPeerID.
//
// # Peer addresses
//
// An rpc_find answer names peers by ID, without addresses (hivemind's protocol), so most calls of a
// lookup dial a peer by its ID alone, which the host resolves (p2p.Host: the kad DHT, then the peers
// that named it). Transport.Find notes every answer's peers as referred by the peer that answered
// (p2p.Host.NoteReferrals) for that purpose.
package dhtrpc
