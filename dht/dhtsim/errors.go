package dhtsim

import "errors"

// Sentinel errors of dhtsim. A failed call returns an error wrapping both dht.ErrNoResponse and one of
// the call errors below; check them with errors.Is.
var (
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("dhtsim: invalid config")
	// ErrDuplicatePeer: Join was called twice with the same peer ID.
	ErrDuplicatePeer = errors.New("dhtsim: peer already joined")

	// ErrUnknownPeer: the callee never joined the network (a dial to an unknown peer).
	ErrUnknownPeer = errors.New("dhtsim: unknown peer")
	// ErrNoHandler: the callee serves no DHT handler (a client-mode node: protocol not supported).
	ErrNoHandler = errors.New("dhtsim: peer serves no DHT protocol")
	// ErrUnreachable: the callee is killed or in another partition, and Config.Unreachable is Refuse.
	ErrUnreachable = errors.New("dhtsim: peer unreachable")
	// ErrTimeout: no answer came (lost message, or an unreachable peer under Silent) before the
	// caller's context was done or Config.SilentTimeout passed.
	ErrTimeout = errors.New("dhtsim: no answer")
	// ErrCallerDown: the caller itself is killed.
	ErrCallerDown = errors.New("dhtsim: caller is killed")
	// ErrRejected: a BeforeCall hook rejected the call.
	ErrRejected = errors.New("dhtsim: call rejected by hook")
	// ErrRemote: the callee's handler returned an error (the remote handler error of a real peer).
	ErrRemote = errors.New("dhtsim: remote handler error")
	// ErrMarshal: a message could not be marshalled or unmarshalled.
	ErrMarshal = errors.New("dhtsim: bad message")
)
