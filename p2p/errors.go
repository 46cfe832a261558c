package p2p

import "errors"

// Sentinel errors of the p2p package. Check them with errors.Is: every error this package returns wraps
// one of them (or is a *RemoteError) with %w.
var (
	// ErrInvalidConfig: a Config field is invalid; the wrapped text names the field.
	ErrInvalidConfig = errors.New("p2p: invalid config")
	// ErrIdentity: an identity file cannot be read, parsed or written; the text names the file.
	ErrIdentity = errors.New("p2p: unusable identity")
	// ErrBootstrap: none of the initial peers could be reached; the text names each peer and why.
	ErrBootstrap = errors.New("p2p: no initial peer reachable")
	// ErrNoAddress: a peer known by its ID alone could not be dialled because peer routing found no
	// address for it (the kad DHT, then the peers that named it; see Host.NoteReferrals). The peer
	// itself may be fine: nothing was sent to it. Distinct from a peer that was dialled and did not
	// answer.
	ErrNoAddress = errors.New("p2p: no address known for peer")
	// ErrClosed: the host has been closed.
	ErrClosed = errors.New("p2p: host closed")
	// ErrHandlerExists: a handler is already registered under this handle name.
	ErrHandlerExists = errors.New("p2p: handler already registered")
	// ErrInvalidHandleName: a handle name is empty or not usable as a libp2p protocol ID.
	ErrInvalidHandleName = errors.New("p2p: invalid handle name")
	// ErrProtocolNotSupported: the remote peer does not serve the handle name (multistream negotiation
	// failed), hivemind's "protocols not supported".
	ErrProtocolNotSupported = errors.New("p2p: protocol not supported by the remote peer")
	// ErrNoReply: the remote peer closed or reset a unary stream without replying. A hivemind peer does
	// this for a request it rejects (missing required field, bad callId, frame over its cap) and when
	// it has no handler for the name.
	ErrNoReply = errors.New("p2p: stream ended without a reply")
	// ErrRemoteHandler matches every *RemoteError: the remote handler failed and sent its error text.
	ErrRemoteHandler = errors.New("p2p: remote handler failed")
	// ErrFrameTooLarge: a frame's announced length exceeds the cap (Config.MaxMessageSize); nothing
	// was allocated for it.
	ErrFrameTooLarge = errors.New("p2p: frame exceeds the size cap")
	// ErrTruncatedFrame: the stream ended inside a frame.
	ErrTruncatedFrame = errors.New("p2p: truncated frame")
	// ErrBadFrameMarker: a stream frame starts with a marker other than 0x00 (message) or 0x01 (end/error).
	ErrBadFrameMarker = errors.New("p2p: bad frame marker")
	// ErrDecode: a frame's payload is not a valid protobuf of the expected type, or lacks a required field.
	ErrDecode = errors.New("p2p: protobuf decode error")
	// ErrInvalidEnvelope: a unary envelope decodes but breaks the protocol (wrong oneof arm, callId not
	// 16 bytes, reply callId differing from the request's).
	ErrInvalidEnvelope = errors.New("p2p: invalid unary envelope")
	// ErrResourceLimit: the local resource manager refused memory for a frame.
	ErrResourceLimit = errors.New("p2p: resource limit reached")
	// ErrMessageCount: a stream-to-unary call received zero or several responses, or a unary-to-stream
	// handler zero or several requests, instead of exactly one.
	ErrMessageCount = errors.New("p2p: expected exactly one message")
)

// RemoteError is the error text a remote handler sent back: the error arm of a unary reply (hivemind
// puts repr(exception) there, e.g. "ValueError('boom')") or the message of an RPCError stream frame.
// errors.Is(err, ErrRemoteHandler) holds for every *RemoteError.
type RemoteError struct {
	// Handle is the handle name that was called.
	Handle string
	// Text is the remote error text, verbatim.
	Text string
}

// Error implements error.
func (e *RemoteError) Error() string {
	return "p2p: remote handler " + e.Handle + " failed: " + e.Text
}

// Is reports whether target is ErrRemoteHandler.
func (e *RemoteError) Is(target error) bool { return target == ErrRemoteHandler }
