package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"google.golang.org/protobuf/proto"
)

// The typed API: handlers and calls over protobuf messages. Req and Resp are pointers to generated
// message structs (e.g. *dhtpb.PingRequest). Call functions take the response type first, so the
// request type is inferred: CallUnary[*dhtpb.PingResponse](ctx, h, peer, name, req).

// newMessage returns a new empty M. M must be a pointer to a generated message type.
func newMessage[M proto.Message]() M {
	var zero M
	return zero.ProtoReflect().Type().New().Interface().(M)
}

// checkMessageType rejects interface type arguments (e.g. proto.Message itself), for which newMessage
// cannot know what to build.
func checkMessageType[M proto.Message](role string) error {
	var zero M
	if any(zero) == nil {
		return fmt.Errorf("p2p: %s type must be a pointer to a generated message, not an interface", role)
	}
	return nil
}

func checkTypes[Req, Resp proto.Message]() error {
	return errors.Join(checkMessageType[Req]("request"), checkMessageType[Resp]("response"))
}

func unmarshal[M proto.Message](data []byte) (M, error) {
	m := newMessage[M]()
	if err := unmarshalInto(data, m); err != nil {
		var zero M
		return zero, err
	}
	return m, nil
}

// unmarshalInto decodes data into m; a payload that is not an m is an ErrDecode error naming the type.
func unmarshalInto(data []byte, m proto.Message) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDecode, m.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

func marshal(m proto.Message) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("p2p: marshal %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	return b, nil
}

// AddUnaryHandler registers fn as the unary handler for name (hivemind: a servicer method whose request
// and response are plain protobufs). The request is decoded as Req; a request that does not decode is
// answered with an error reply. See UnaryBytesHandler for ctx and from.
func AddUnaryHandler[Req, Resp proto.Message](h *Host, name string, fn func(ctx context.Context, from PeerID, req Req) (Resp, error)) error {
	if err := checkTypes[Req, Resp](); err != nil {
		return err
	}
	return h.SetUnaryBytesHandler(name, func(ctx context.Context, from PeerID, data []byte) ([]byte, error) {
		req, err := unmarshal[Req](data)
		if err != nil {
			return nil, err
		}
		resp, err := fn(ctx, from, req)
		if err != nil {
			return nil, err
		}
		return marshal(resp)
	})
}

// CallUnary calls the unary handler name on peer p (see Host.CallUnaryBytes for the wire and errors).
func CallUnary[Resp, Req proto.Message](ctx context.Context, h *Host, p PeerID, name string, req Req) (Resp, error) {
	var zero Resp
	if err := checkTypes[Req, Resp](); err != nil {
		return zero, err
	}
	data, err := marshal(req)
	if err != nil {
		return zero, err
	}
	out, err := h.CallUnaryBytes(ctx, p, name, data)
	if err != nil {
		return zero, err
	}
	return unmarshal[Resp](out)
}

// requestSeq adapts a stream handler's input to an iterator of decoded requests. It yields one error
// and stops when the input is broken or a request does not decode.
func requestSeq[Req proto.Message](in *Requests) iter.Seq2[Req, error] {
	return func(yield func(Req, error) bool) {
		for {
			payload, ok, err := in.Next()
			if !ok {
				if err != nil {
					var zero Req
					yield(zero, err)
				}
				return
			}
			req, err := unmarshal[Req](payload)
			if err != nil {
				in.Malformed(err) // as hivemind: no error frame for a request that does not parse
			}
			if !yield(req, err) || err != nil {
				return
			}
		}
	}
}

func sender[Resp proto.Message](send func([]byte) error) func(Resp) error {
	return func(resp Resp) error {
		b, err := marshal(resp)
		if err != nil {
			return err
		}
		return send(b)
	}
}

// AddStreamHandler registers fn as a stream-to-stream handler for name (hivemind: request and response
// both AsyncIterator). requests ends at the caller's END_OF_STREAM; send writes one response (safe for
// concurrent use); a returned error reaches the caller as an RPCError frame.
func AddStreamHandler[Req, Resp proto.Message](h *Host, name string,
	fn func(ctx context.Context, from PeerID, requests iter.Seq2[Req, error], send func(Resp) error) error) error {
	if err := checkTypes[Req, Resp](); err != nil {
		return err
	}
	return h.SetStreamBytesHandler(name, func(ctx context.Context, from PeerID, in *Requests, send func([]byte) error) error {
		return fn(ctx, from, requestSeq[Req](in), sender[Resp](send))
	})
}

// AddUnaryToStreamHandler registers fn as a handler with one request and a stream of responses (e.g.
// rpc_download_state). Like hivemind's asingle, it waits for END_OF_STREAM and requires exactly one
// request; zero or several are answered with an error frame.
func AddUnaryToStreamHandler[Req, Resp proto.Message](h *Host, name string,
	fn func(ctx context.Context, from PeerID, req Req, send func(Resp) error) error) error {
	if err := checkTypes[Req, Resp](); err != nil {
		return err
	}
	return h.SetStreamBytesHandler(name, func(ctx context.Context, from PeerID, in *Requests, send func([]byte) error) error {
		req, err := single(requestSeq[Req](in))
		if err != nil {
			return err
		}
		return fn(ctx, from, req, sender[Resp](send))
	})
}

// AddStreamToUnaryHandler registers fn as a handler with a stream of requests and one response, sent as
// one message frame.
func AddStreamToUnaryHandler[Req, Resp proto.Message](h *Host, name string,
	fn func(ctx context.Context, from PeerID, requests iter.Seq2[Req, error]) (Resp, error)) error {
	if err := checkTypes[Req, Resp](); err != nil {
		return err
	}
	return h.SetStreamBytesHandler(name, func(ctx context.Context, from PeerID, in *Requests, send func([]byte) error) error {
		resp, err := fn(ctx, from, requestSeq[Req](in))
		if err != nil {
			return err
		}
		return sender[Resp](send)(resp)
	})
}

// single returns the only item of seq, or an error when seq holds zero or several items or fails.
func single[M any](seq iter.Seq2[M, error]) (M, error) {
	var (
		out M
		n   int
	)
	for m, err := range seq {
		if err != nil {
			return out, err
		}
		if n++; n == 1 {
			out = m
		}
	}
	if n != 1 {
		var zero M
		return zero, fmt.Errorf("%w: got %d", ErrMessageCount, n)
	}
	return out, nil
}

// ClientStream is the typed caller's side of a stream call; see BytesStream for the protocol.
type ClientStream[Req, Resp proto.Message] struct {
	raw *BytesStream
}

// OpenStream opens a stream call to the handler name on peer p. ctx covers the whole call.
func OpenStream[Resp, Req proto.Message](ctx context.Context, h *Host, p PeerID, name string) (*ClientStream[Req, Resp], error) {
	if err := checkTypes[Req, Resp](); err != nil {
		return nil, err
	}
	raw, err := h.OpenBytesStream(ctx, p, name)
	if err != nil {
		return nil, err
	}
	return &ClientStream[Req, Resp]{raw: raw}, nil
}

// Send writes one request.
func (c *ClientStream[Req, Resp]) Send(req Req) error {
	b, err := marshal(req)
	if err != nil {
		return err
	}
	return c.raw.Send(b)
}

// CloseSend sends END_OF_STREAM; the stream stays open for the responses.
func (c *ClientStream[Req, Resp]) CloseSend() error { return c.raw.CloseSend() }

// Recv returns the next response, io.EOF after the last one, or an error (a *RemoteError when the
// handler failed).
func (c *ClientStream[Req, Resp]) Recv() (Resp, error) {
	b, err := c.raw.Recv()
	if err != nil {
		var zero Resp
		return zero, err
	}
	return unmarshal[Resp](b)
}

// Close ends the call (resetting the stream if the responses were not read to the end).
func (c *ClientStream[Req, Resp]) Close() error { return c.raw.Close() }

// CallStream calls the stream handler name on peer p: it sends every request of reqs, then
// END_OF_STREAM, while yielding the responses as they arrive. The sequence ends after the last response,
// or with one error. Stopping the iteration early resets the stream (cancelling the remote handler).
// reqs runs on its own goroutine and must end on its own; CallStream returns only after it has.
func CallStream[Resp, Req proto.Message](ctx context.Context, h *Host, p PeerID, name string, reqs iter.Seq[Req]) iter.Seq2[Resp, error] {
	return func(yield func(Resp, error) bool) {
		var zero Resp
		cs, err := OpenStream[Resp, Req](ctx, h, p, name)
		if err != nil {
			yield(zero, err)
			return
		}
		sent := make(chan error, 1)
		go func() {
			var err error
			for r := range reqs {
				if err = cs.Send(r); err != nil {
					break
				}
			}
			if err == nil {
				err = cs.CloseSend()
			}
			sent <- err
		}()
		for {
			resp, err := cs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil || !yield(resp, nil) {
				_ = cs.Close() // resets the stream unless the handler sent an error frame
				<-sent
				if err != nil {
					yield(zero, err)
				}
				return
			}
		}
		// The handler may finish without reading all requests; a send failing then is not an error.
		_ = cs.Close()
		<-sent
	}
}

// CallUnaryToStream calls a handler taking one request and streaming responses (see CallStream).
func CallUnaryToStream[Resp, Req proto.Message](ctx context.Context, h *Host, p PeerID, name string, req Req) iter.Seq2[Resp, error] {
	return CallStream[Resp](ctx, h, p, name, func(yield func(Req) bool) { yield(req) })
}

// CallStreamToUnary calls a handler taking a stream of requests and returning one response; zero or
// several responses are an ErrMessageCount error.
func CallStreamToUnary[Resp, Req proto.Message](ctx context.Context, h *Host, p PeerID, name string, reqs iter.Seq[Req]) (Resp, error) {
	return single(CallStream[Resp](ctx, h, p, name, reqs))
}
