package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// requestPrefetch is how many request frames a stream handler's input buffers ahead of the handler
// (hivemind's max_prefetch), which gives the caller backpressure.
const requestPrefetch = 5

// largeFrame is the payload size above which a frame is written as header and payload separately
// rather than copied into one buffer.
const largeFrame = 64 << 10

// StreamBytesHandler serves one stream call. requests yields the caller's serialized requests in order;
// it ends (without error) at the caller's END_OF_STREAM frame, or yields one error when the input is
// broken (garbage, oversized or truncated frame, or the caller going away). send writes one response
// frame; it is safe for concurrent use. A returned error is sent to the caller as an RPCError frame.
// ctx is cancelled when the caller goes away or the host closes.
type StreamBytesHandler func(ctx context.Context, from PeerID, requests *Requests, send func([]byte) error) error

// Requests is a stream handler's input: the caller's request payloads, read ahead by a small buffer.
type Requests struct {
	frames chan inboundFrame
	// err is set before frames is closed: why the input ended without END_OF_STREAM (nil after a clean end).
	err error
	// abort ends the call as a malformed request does: no error frame, a clean close.
	abort context.CancelCauseFunc
}

type inboundFrame struct {
	payload []byte
	res     *reservation
}

// Next returns the next request payload. ok is false at the end of the input; err then tells whether it
// ended cleanly (nil: the caller sent END_OF_STREAM) or not.
func (r *Requests) Next() (payload []byte, ok bool, err error) {
	f, ok := <-r.frames
	if !ok {
		return nil, false, r.err
	}
	f.res.release() // the payload now belongs to the handler
	return f.payload, true, nil
}

// Malformed ends the call because a request payload is not what the handler reads (a typed handler's
// payload that does not decode as its request type): like a malformed frame, hivemind's
// receive_protobuf raises before its handler sees the request, so the stream is closed cleanly with no
// error frame, whatever the handler returns. err is the cause (logged).
func (r *Requests) Malformed(err error) {
	if r.abort != nil {
		r.abort(fmt.Errorf("%w: malformed request: %w", ErrDecode, err))
	}
}

// SetStreamBytesHandler registers fn as the stream handler for name. Typed handlers: AddStreamHandler
// and its unary-input and unary-output variants.
func (h *Host) SetStreamBytesHandler(name string, fn StreamBytesHandler) error {
	return h.register(name, func(s network.Stream) { h.serveStream(name, fn, s) })
}

// serveStream runs one stream call with hivemind's framing: requests are read by a helper goroutine until
// the caller's 0x01 frame; after it any read outcome means the caller went away. The handler's responses
// go out as 0x00 frames, its error as one 0x01 RPCError frame; then the stream is closed. A malformed
// request (see readRequests) cancels the handler and closes the stream cleanly with no further frame, as
// hivemind does; input over the cap, truncated or stalled resets it.
func (h *Host) serveStream(name string, fn StreamBytesHandler, s network.Stream) {
	from := s.Conn().RemotePeer()
	log := h.log.With("handle", name, "from", from.String())
	ctx, cancel := context.WithCancelCause(h.ctx)
	defer cancel(nil)

	in := &Requests{frames: make(chan inboundFrame, requestPrefetch), abort: cancel}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		h.readRequests(ctx, cancel, s, in, log)
	}()

	var sendMu sync.Mutex
	send := func(payload []byte) error {
		if len(payload) > h.cfg.MaxMessageSize {
			return fmt.Errorf("%w: %d-byte response, cap %d", ErrFrameTooLarge, len(payload), h.cfg.MaxMessageSize)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("p2p: send on %s: %w", name, context.Cause(ctx))
		}
		sendMu.Lock()
		defer sendMu.Unlock()
		if err := h.writeStreamFrame(s, markerMessage, payload); err != nil {
			return fmt.Errorf("p2p: send on %s: %w", name, err)
		}
		return nil
	}

	err := runStream(ctx, fn, from, in, send, log)
	if err != nil && ctx.Err() == nil {
		sendMu.Lock()
		if werr := h.writeStreamFrame(s, markerEnd, encodeRPCError(err.Error())); werr != nil {
			log.Debug("cannot send the handler's error frame", "err", werr)
		}
		sendMu.Unlock()
	}
	if ctx.Err() != nil {
		log.Debug("stream call ended early", "cause", context.Cause(ctx), "handler_err", err)
	}
	cancel(errHandlerDone)
	_ = s.Close() // unblocks the reader; a stream already reset stays reset
	<-readerDone
	for f := range in.frames { // frames the handler did not consume
		f.res.release()
	}
}

// errHandlerDone is the cancellation cause once the handler has returned.
var errHandlerDone = errors.New("p2p: handler returned")

// readRequests feeds in.frames until END_OF_STREAM, then watches for the caller going away.
//
// A malformed request ends the call the way hivemind's stream handler ends it: receive_protobuf raises on
// an unknown marker (TypeError) and on an end frame whose payload is not an RPCError (DecodeError); the
// handler then cancels its processing task and closes the stream, writing nothing more. Here ctx is
// cancelled before the handler sees its input end, so no error frame follows, and serveStream closes the
// stream (a clean end, not a reset). The caller closing the stream between frames is an abort too.
// Other bad input (a frame over the cap or the resource limit, a stream ending inside a frame, a
// caller stalled past the idle timeout) resets the stream and cancels ctx.
func (h *Host) readRequests(ctx context.Context, cancel context.CancelCauseFunc, s network.Stream, in *Requests, log *slog.Logger) {
	for {
		_ = s.SetReadDeadline(time.Now().Add(h.cfg.StreamIdleTimeout))
		marker, payload, res, err := readStreamFrame(s, h.cfg.MaxMessageSize, s.Scope())
		if err == nil && marker == markerEnd { // END_OF_STREAM, whose payload must be an RPCError
			res.release()
			if _, err = decodeRPCError(payload); err == nil {
				break
			}
			err = fmt.Errorf("end-of-stream frame: %w", err)
		}
		if err != nil {
			if ctx.Err() == nil {
				switch {
				case errors.Is(err, io.EOF):
					err = fmt.Errorf("%w: the caller closed the stream before END_OF_STREAM", ErrTruncatedFrame)
					log.Debug("stream call aborted by the caller", "reason", err)
				case errors.Is(err, ErrBadFrameMarker), errors.Is(err, ErrDecode):
					log.Info("malformed stream request; closing the stream without a reply", "reason", err)
				default:
					log.Info("bad stream request frame; resetting the stream", "reason", err)
					_ = s.Reset()
				}
				cancel(err)
			}
			in.err = err
			close(in.frames)
			return
		}
		select {
		case in.frames <- inboundFrame{payload: payload, res: res}:
		case <-ctx.Done():
			res.release()
			in.err = context.Cause(ctx)
			close(in.frames)
			return
		}
	}
	close(in.frames)
	_ = s.SetReadDeadline(time.Time{})
	var one [1]byte
	_, err := s.Read(one[:])
	cancel(fmt.Errorf("p2p: caller went away: %w", errOrEOF(err)))
}

// writeStreamFrame writes one marker/length/payload frame with the idle timeout as write deadline.
func (h *Host) writeStreamFrame(s network.Stream, marker byte, payload []byte) error {
	_ = s.SetWriteDeadline(time.Now().Add(h.cfg.StreamIdleTimeout))
	return writeFrame(s, marker, payload)
}

// writeFrame writes one stream frame: in one Write when small, header then payload when large.
func writeFrame(w io.Writer, marker byte, payload []byte) error {
	if len(payload) <= largeFrame {
		_, err := w.Write(appendStreamFrame(make([]byte, 0, streamHeaderLen+len(payload)), marker, payload))
		return err
	}
	if _, err := w.Write(appendStreamHeader(make([]byte, 0, streamHeaderLen), marker, len(payload))); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// runStream calls fn, turning a panic into an error frame.
func runStream(ctx context.Context, fn StreamBytesHandler, from PeerID, in *Requests, send func([]byte) error, log *slog.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("stream handler panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return fn(ctx, from, in, send)
}
