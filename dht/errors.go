package dht

import "errors"

// Sentinel errors of the dht package. Check them with errors.Is: they are wrapped with %w wherever they
// are returned, and the ipc package maps them to gRPC status codes and back, so they keep their
// identity across the worker process boundary.
var (
	// ErrIDOutOfRange: a byte string read as an ID is 2^160 or more.
	ErrIDOutOfRange = errors.New("dht: id out of range")
	// ErrInvalidKey: a key cannot be encoded (e.g. an integer outside msgpack's range).
	ErrInvalidKey = errors.New("dht: invalid key")
	// ErrInvalidValue: a value or subkey cannot be encoded, or a decoded value is malformed.
	ErrInvalidValue = errors.New("dht: invalid value")
	// ErrInvalidExpiration: an expiration is NaN or infinite.
	ErrInvalidExpiration = errors.New("dht: invalid expiration")
	// ErrInvalidArgument: a call's arguments do not fit together (lengths differ, empty key list, ...).
	ErrInvalidArgument = errors.New("dht: invalid argument")
	// ErrNoResponse: a remote peer did not answer an RPC (timeout, reset, EOF, dial failure).
	ErrNoResponse = errors.New("dht: peer did not respond")
	// ErrNoAddress: an RPC could not be sent because no address is known for the peer (peer routing
	// found none): nothing reached the peer, which may be fine. A Transport returns it instead of
	// ErrNoResponse; the node never bans a peer for it (a ban is for a peer that failed to answer,
	// not for the node's own missing knowledge). The node's results report such a call as
	// unanswered: their errors wrap both sentinels.
	ErrNoAddress = errors.New("dht: no address known for peer")
	// ErrBootstrapFailed: none of the initial peers answered a validated ping.
	ErrBootstrapFailed = errors.New("dht: bootstrap failed")
	// ErrValidation: a validated ping found the peer unable to reach us, or its clock too far off.
	ErrValidation = errors.New("dht: peer validation failed")
	// ErrShutdown: the node has been shut down.
	ErrShutdown = errors.New("dht: node is shut down")
	// ErrMessageTooLarge: a request or response exceeds the frame cap.
	ErrMessageTooLarge = errors.New("dht: message too large")
	// ErrStorageFull: a local store would exceed the storage bounds (the item is refused).
	ErrStorageFull = errors.New("dht: storage full")
)
