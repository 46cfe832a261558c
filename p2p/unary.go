package p2p

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// UnaryBytesHandler serves one unary call: data is the serialized request, the result the serialized
// response. A returned error is sent to the caller as the reply's error arm (its Error() text).
// from is the caller's authenticated peer ID (from the connection, never from the envelope). ctx is
// cancelled when the caller goes away (closes or resets the stream) or the host closes.
type UnaryBytesHandler func(ctx context.Context, from PeerID, data []byte) ([]byte, error)

// responseTooLargeText is the error arm hivemind sends for a response over the size cap.
const responseTooLargeText = "response size exceeds message size limit"

// allowLimited lets outbound streams use limited (relayed) connections: NAT'd hivemind peers are often
// reachable only through a relay.
func allowLimited(ctx context.Context) context.Context {
	return network.WithAllowLimitedConn(ctx, "hivemind rpc")
}

// register installs serve as the libp2p stream handler for name; serve runs on libp2p's goroutine for
// the stream and is tracked so Close can wait for it.
func (h *Host) register(name string, serve func(s network.Stream)) error {
	if err := checkHandleName(name); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if _, ok := h.handlers[name]; ok {
		return fmt.Errorf("%w: %q", ErrHandlerExists, name)
	}
	h.handlers[name] = struct{}{}
	h.lh.SetStreamHandler(protocol.ID(name), func(s network.Stream) {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = s.Reset()
			return
		}
		h.inflight.Add(1)
		h.mu.Unlock()
		defer h.inflight.Done()
		serve(s)
	})
	return nil
}

// SetUnaryBytesHandler registers fn as the unary handler for name (a hivemind handle name, see
// HandleName). It fails with ErrHandlerExists when name is taken. Typed handlers: AddUnaryHandler.
func (h *Host) SetUnaryBytesHandler(name string, fn UnaryBytesHandler) error {
	return h.register(name, func(s network.Stream) { h.serveUnary(name, fn, s) })
}

// serveUnary is p2pd's persistentStreamHandler: read one request frame (capped, with a deadline), require
// the callUnary arm and a 16-byte callId, run the handler while watching for the caller going away (any
// read outcome, EOF included), reply with the callId echoed, then Close.
//
// A request p2pd rejects gets what p2pd gives it: no reply and a clean Close (p2pd's handler returns and
// its deferred Close runs; the caller reads EOF). That covers a frame over the cap, a stream ending inside
// the frame, an envelope that does not decode or lacks a required field, a callId not 16 bytes and
// another arm than callUnary. A stream that stalls past the idle timeout, breaks, or exceeds the resource
// limit is reset.
func (h *Host) serveUnary(name string, fn UnaryBytesHandler, s network.Stream) {
	from := s.Conn().RemotePeer()
	log := &callLog{h: h, name: name, from: from}
	_ = s.SetReadDeadline(time.Now().Add(h.cfg.StreamIdleTimeout))
	body, res, err := readDelimited(s, h.cfg.MaxMessageSize, s.Scope())
	if err != nil {
		switch {
		case errors.Is(err, io.EOF):
			log.get().Debug("unary stream closed before a request")
			_ = s.Close()
		case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrTruncatedFrame):
			log.get().Info("rejected unary request frame; closing without a reply", "reason", err)
			_ = s.Close()
		default:
			log.get().Info("bad unary request stream; resetting it", "reason", err)
			_ = s.Reset()
		}
		return
	}
	defer res.release()
	req, err := decodeUnaryRequest(body)
	if err != nil {
		log.get().Info("rejected unary request; closing without a reply", "reason", err)
		_ = s.Close()
		return
	}
	_ = s.SetReadDeadline(time.Time{})

	ctx, cancel := context.WithCancelCause(h.ctx)
	defer cancel(nil)
	watchDone := make(chan struct{})
	go func() { // the caller never writes again: any read outcome means it went away
		defer close(watchDone)
		var one [1]byte
		_, err := s.Read(one[:])
		cancel(fmt.Errorf("p2p: caller went away: %w", errOrEOF(err)))
	}()
	defer func() { <-watchDone }()

	resp, herr := runUnary(ctx, fn, from, req.data, log)
	if ctx.Err() != nil {
		log.get().Debug("unary call abandoned; no reply", "cause", context.Cause(ctx))
		_ = s.Reset()
		return
	}
	isError, errText := herr != nil, ""
	if isError {
		errText = herr.Error()
	}
	frame, err := encodeUnaryReply(req.callID, resp, isError, errText)
	if body, _ := binary.Uvarint(frame); err == nil && body > uint64(h.cfg.MaxMessageSize) {
		log.get().Warn("unary reply over the size cap; replying with an error instead", "size", body)
		frame, err = encodeUnaryReply(req.callID, nil, true, responseTooLargeText)
	}
	if err != nil {
		log.get().Error("cannot encode unary reply", "err", err)
		_ = s.Reset()
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(h.cfg.StreamIdleTimeout))
	if _, err := s.Write(frame); err != nil {
		log.get().Debug("cannot write unary reply", "err", err)
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// runUnary calls fn, turning a panic into an error reply.
func runUnary(ctx context.Context, fn UnaryBytesHandler, from PeerID, data []byte, log *callLog) (resp []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.get().Error("unary handler panicked", "panic", r, "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return fn(ctx, from, data)
}

// callLog is the logger of one served call, with the handle name and the caller, built on first
// use: slog's JSON handler formats With's attributes at once (and the caller's ID is base58
// encoded), which every request paid although almost none logs anything.
type callLog struct {
	h    *Host
	name string
	from PeerID
	l    *slog.Logger
}

func (c *callLog) get() *slog.Logger {
	if c.l == nil {
		c.l = c.h.log.With("handle", c.name, "from", c.from.String())
	}
	return c.l
}

// isNegotiationReset reports a go-libp2p peer resetting a lazily negotiated stream because it does not
// serve the protocol (anymore): the peerstore believed it did.
func isNegotiationReset(err error) bool {
	var se *network.StreamError
	return errors.As(err, &se) && se.Remote && se.ErrorCode == network.StreamProtocolNegotiationFailed
}

func errOrEOF(err error) error {
	if err == nil {
		return errors.New("unexpected data after the request")
	}
	return err
}

// CallUnaryBytes calls the unary handler name on peer p with a serialized request and returns the
// serialized response. One new stream per call; the request is one frame with a random 16-byte callId
// and every required field, the write side stays open until the reply is read (never half-closed).
// ctx's deadline or cancellation resets the stream, which cancels the remote handler. Errors:
// *RemoteError (the handler's error text), ErrProtocolNotSupported, ErrNoReply, ErrFrameTooLarge, ctx's
// error, or a dial/stream error.
func (h *Host) CallUnaryBytes(ctx context.Context, p PeerID, name string, data []byte) ([]byte, error) {
	var callID [callIDLen]byte
	if _, err := rand.Read(callID[:]); err != nil {
		return nil, fmt.Errorf("p2p: call id: %w", err)
	}
	frame, err := encodeUnaryRequest(callID[:], []byte(p), name, data)
	if err != nil {
		return nil, err
	}
	if body, _ := binary.Uvarint(frame); body > uint64(h.cfg.MaxMessageSize) {
		return nil, fmt.Errorf("%w: %d-byte request envelope to %s, cap %d", ErrFrameTooLarge, body, name, h.cfg.MaxMessageSize)
	}
	s, err := h.openStream(ctx, p, name)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if _, err := s.Write(frame); err != nil {
		_ = s.Reset()
		return nil, h.callError(ctx, p, name, "write request", err)
	}
	body, res, err := readDelimited(s, h.cfg.MaxMessageSize, s.Scope())
	if err != nil {
		_ = s.Reset()
		return nil, h.callError(ctx, p, name, "read reply", err)
	}
	defer res.release()
	reply, err := decodeUnaryReply(body, callID[:])
	if err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("p2p: call %s on %s: %w", name, p, err)
	}
	_ = s.Close()
	if reply.isError {
		return nil, &RemoteError{Handle: name, Text: reply.errorText}
	}
	return reply.response, nil
}

// openStream opens a stream to p for name, allowing limited connections and classifying failures.
func (h *Host) openStream(ctx context.Context, p PeerID, name string) (network.Stream, error) {
	if err := checkHandleName(name); err != nil {
		return nil, err
	}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	s, err := h.lh.NewStream(allowLimited(ctx), p, protocol.ID(name))
	if err != nil {
		return nil, h.callError(ctx, p, name, "open stream", err)
	}
	return s, nil
}

// callError classifies a caller-side failure: ctx's own error first, then an unsupported protocol
// (multistream may report it only at the first read, when negotiation was lazy), then a stream that
// ended without a reply.
func (h *Host) callError(ctx context.Context, p PeerID, name, step string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("p2p: call %s on %s: %w (%s: %w)", name, p, ctx.Err(), step, err)
	case errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}), isNegotiationReset(err):
		return fmt.Errorf("%w: %s on %s: %w", ErrProtocolNotSupported, name, p, err)
	case errors.Is(err, io.EOF), errors.Is(err, ErrTruncatedFrame), errors.Is(err, network.ErrReset):
		return fmt.Errorf("%w: %s on %s (%s): %w", ErrNoReply, name, p, step, err)
	default:
		return fmt.Errorf("p2p: call %s on %s: %s: %w", name, p, step, err)
	}
}
