// Package p2p is the project's only door to go-libp2p: a Host that is a full peer of a hivemind swarm
// (wire-compatible with Python hivemind and its p2pd daemon, spec/wire.md), and the servicer/stub
// machinery (hivemind's ServicerBase/StubBase) that serves and calls RPCs by hivemind handle name.
//
// # Host
//
// New(ctx, Config) starts a host: identity from a hivemind/p2pd identity file (created as RSA-2048 when
// missing) or a fresh Ed25519 key; TCP always, QUIC when a quic-v1 listen address is given, the relay
// transport; Noise and TLS; yamux; a kad DHT (/ipfs/kad/1.0.0, server mode by default, no default
// bootstrap peers) as the routing of a routed host, so a call to a peer known only by its ID resolves
// its addresses; resource and connection managers sized by Config.Limits. Initial peers are dialled
// concurrently and New fails only when none answers; it returns once those it reached are usable for
// peer routing (identified, and in kad's routing table when they serve kad). Close tears everything
// down.
//
// # Behind NATs
//
// A host runs what hivemind's p2pd runs (options_nat.go), each part a Config field named after
// hivemind's argument and on by default as there: the circuit v2 relay transport, so peers behind
// NATs are reached through relays and every outgoing stream may use a limited (relayed)
// connection (DisableRelay); the relay service for others, with p2pd's limits (DisableRelayService,
// Relay); AutoNAT, whose client tells the host whether it is reachable (Reachability forces it,
// DHTModeAuto follows it) and whose service and hole punching (DCUtR) help other peers
// (DisableAutoNAT); auto-relay, off by default, reserving slots on relays while private
// (AutoRelay, TrustedRelays, else the initial peers, then kad's closest peers); NAT port mapping,
// off by default unlike hivemind (NATPortMap); and NoListen. NATStatus reports the reachability,
// relays, circuits and hole punches; PeerStatuses tells relayed connections from direct ones.
//
// # Peer IDs without addresses
//
// hivemind's rpc_find answers name peers by ID alone, so most calls of a DHT lookup dial a peer whose
// address the host must find: the peerstore, then the kad DHT (retried once after seeding its routing
// table from the connected peers if it was empty), then the peers that named it (NoteReferrals; each
// is sent a kad FIND_NODE for the peer). When all fail the call fails with ErrNoAddress: nothing was
// sent to the peer, which is not the same as a peer that did not answer.
//
// # Handle names
//
// Every RPC is a libp2p stream whose protocol ID is the handle name, verbatim and without a leading
// slash: "Class.method" or "namespace::Class.method" (HandleName). Names are always spelled out, never
// derived from Go identifiers. A name is registered once (ErrHandlerExists); RemoveHandler frees it.
//
// # Unary wire (p2pd's persistent-connection envelope)
//
// One new stream per call. The caller writes one frame, uvarint(len) || PersistentConnectionRequest
// {callId: 16 random bytes, callUnary{peer: callee ID, proto: handle name, data: request}}, with every
// proto2 required field present (data too, even empty). It then reads one reply frame
// PersistentConnectionRequest{callId echoed, unaryResponse{response | error}} and closes.
//
// The caller NEVER half-closes (CloseWrite) before reading the reply: the callee treats any read outcome
// on the stream, EOF included, as the caller going away and cancels the handler without replying.
//
// The handler side reads one frame; a request p2pd rejects (a frame over the cap or cut short, a body
// that is not a valid envelope with the callUnary arm and a 16-byte callId) gets no reply and a clean
// close, as p2pd gives it (the caller reads EOF). The caller's identity is taken from the connection,
// never from the envelope. The handler's context is cancelled when the caller goes away. An error
// becomes the reply's error arm (its text); a panic too.
//
// Caller errors: *RemoteError (matches ErrRemoteHandler) carries the remote error text;
// ErrProtocolNotSupported when the peer does not serve the name; ErrNoReply when the stream ends
// without a reply; the context's error on deadline or cancellation (which resets the stream).
//
// # Stream wire (hivemind's stream-handler framing)
//
// Frames are marker (1 byte) || length (8 bytes, big-endian) || payload. Marker 0x00 carries a request or
// response protobuf. From the caller, 0x01 ends the requests (END_OF_STREAM: an empty RPCError,
// 01 00×8); from the handler, 0x01 carries RPCError{message}, its error. The caller sends its requests
// then END_OF_STREAM, keeps its write side open, and reads frames until EOF; the handler reads until the
// 0x01 frame, writes 0x00 frames or one 0x01 error frame, then closes. Handlers read at most a few frames
// ahead (hivemind's max_prefetch of 5).
//
// # Limits
//
// Every length read from a peer is checked against Config.MaxMessageSize (4 MiB by default) and charged
// to the stream's resource scope before anything is allocated. Bad input ends that stream (with a logged
// reason) and nothing else: closed without a reply where p2pd and hivemind close it (a rejected unary
// request; a stream request with an unknown marker, an end frame that is not an RPCError, or a payload
// the typed handler cannot decode), reset otherwise (a frame over the resource limit, a stream-handler
// frame over the cap or cut short); a handler waiting longer than
// Config.StreamIdleTimeout for a frame (or to send one) resets the stream, so a peer that stalls mid-frame
// cannot pin a goroutine. The caller's context bounds the caller's side.
//
// # Typed API
//
// AddUnaryHandler, AddStreamHandler, AddUnaryToStreamHandler, AddStreamToUnaryHandler register handlers
// over protobuf messages; CallUnary, CallStream, CallUnaryToStream, CallStreamToUnary and OpenStream call
// them. The *Bytes methods of Host are the same over serialized messages.
package p2p
