package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
)

// BytesStream is the caller's side of one stream call with hivemind's framing: Send request frames,
// CloseSend (the END_OF_STREAM frame; the write side stays open, as p2pd requires), Recv response frames
// until io.EOF, Close. Send and CloseSend may run concurrently with Recv; each of them alone is not for
// concurrent use. Typed form: ClientStream.
type BytesStream struct {
	h    *Host
	name string
	peer PeerID
	// ctx is the call's context, stored to tell its cancellation from other stream failures: the stream
	// is reset when it ends.
	ctx  context.Context
	s    network.Stream
	stop func() bool

	sendMu  sync.Mutex
	endSent bool

	finished bool // Recv saw the end of the responses (EOF or an error frame)
}

// OpenBytesStream opens a stream call to the stream handler name on peer p. ctx covers the whole call:
// its deadline or cancellation resets the stream, which cancels the remote handler.
func (h *Host) OpenBytesStream(ctx context.Context, p PeerID, name string) (*BytesStream, error) {
	s, err := h.openStream(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return &BytesStream{
		h: h, name: name, peer: p, ctx: ctx, s: s,
		stop: context.AfterFunc(ctx, func() { _ = s.Reset() }),
	}, nil
}

// Send writes one request frame (0x00 marker).
func (c *BytesStream) Send(payload []byte) error {
	if len(payload) > c.h.cfg.MaxMessageSize {
		return fmt.Errorf("%w: %d-byte request to %s, cap %d", ErrFrameTooLarge, len(payload), c.name, c.h.cfg.MaxMessageSize)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.endSent {
		return fmt.Errorf("p2p: send on %s after CloseSend", c.name)
	}
	if err := writeFrame(c.s, markerMessage, payload); err != nil {
		return c.h.callError(c.ctx, c.peer, c.name, "send request", err)
	}
	return nil
}

// CloseSend ends the requests with hivemind's END_OF_STREAM frame (01 + eight zero bytes). It does not
// half-close the stream: a p2pd peer would take that as an abort. Calling it again does nothing.
func (c *BytesStream) CloseSend() error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.endSent {
		return nil
	}
	c.endSent = true
	if _, err := c.s.Write(endOfStreamFrame()); err != nil {
		return c.h.callError(c.ctx, c.peer, c.name, "send END_OF_STREAM", err)
	}
	return nil
}

// Recv reads the next response payload. It returns io.EOF when the handler closed the stream after its
// last response, a *RemoteError when the handler sent an error frame, and otherwise a stream error
// (the stream is then reset).
func (c *BytesStream) Recv() ([]byte, error) {
	if c.finished {
		return nil, io.EOF
	}
	marker, payload, res, err := readStreamFrame(c.s, c.h.cfg.MaxMessageSize, c.s.Scope())
	if err != nil {
		if errors.Is(err, io.EOF) && c.ctx.Err() == nil {
			c.finished = true
			return nil, io.EOF
		}
		_ = c.s.Reset()
		if errors.Is(err, io.EOF) {
			err = network.ErrReset
		}
		return nil, c.h.callError(c.ctx, c.peer, c.name, "read response", err)
	}
	res.release() // the payload now belongs to the caller
	if marker == markerEnd {
		c.finished = true
		text, err := decodeRPCError(payload)
		if err != nil {
			_ = c.s.Reset()
			return nil, fmt.Errorf("p2p: call %s on %s: error frame: %w", c.name, c.peer, err)
		}
		return nil, &RemoteError{Handle: c.name, Text: text}
	}
	return payload, nil
}

// Close ends the call. After Recv returned io.EOF or a *RemoteError the stream is closed; before that it
// is reset, which cancels the remote handler.
func (c *BytesStream) Close() error {
	c.stop()
	if c.finished {
		return c.s.Close()
	}
	return c.s.Reset()
}
