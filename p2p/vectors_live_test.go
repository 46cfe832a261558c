package p2p

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/proto/p2pdpb"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// The golden exchanges replayed over live streams, on loopback TCP and on mocknet: recorded bytes are
// written verbatim on one side and our implementation answers on the other, so what goes over the wire
// is compared byte for byte, and so is how the stream ended.

// unaryCallerKinds maps the error kinds a caller of a unary handler records to our caller's errors.
var unaryCallerKinds = vectors.Kinds{
	"remote_handler_error":   ErrRemoteHandler,
	"eof":                    ErrNoReply,
	"protocol_not_supported": ErrProtocolNotSupported,
	"message_too_large":      ErrFrameTooLarge,
}

// TestUnaryLiveVectors replays every recorded unary call, whichever side made it, on both sides:
//   - handler: the recorded request frame is written raw to our unary handler, which answers with the
//     recorded response; the reply on the wire is the recorded reply frame byte for byte, a request
//     p2pd dropped gets no reply and never reaches the handler, and the stream ends as recorded;
//   - caller: our caller sends the recorded data to a stand-in for the callee that answers with the
//     recorded reply frame (or closes silently, or is not there); our caller returns the recorded
//     response, or an error of the recorded kind.
func TestUnaryLiveVectors(t *testing.T) {
	for _, list := range unaryLists {
		t.Run(list, func(t *testing.T) {
			vectors.Run(t, envelopeFile, list, func(t *testing.T, tc unaryCase) {
				forEachNet(t, func(t *testing.T, kind string) {
					a, b := hostPair(t, kind, Config{})
					if outcome := tc.outcome(t); outcome == outcomeReply || outcome == outcomeNoReply {
						t.Run("handler", func(t *testing.T) { replayUnaryToHandler(t, a, b, tc) })
					}
					t.Run("caller", func(t *testing.T) { callUnaryStandIn(t, a, b, tc) })
				})
			})
		})
	}
}

// requestData returns the callUnary data of the request frame (nil when the frame has no callUnary).
func requestData(t *testing.T, frame []byte) []byte {
	t.Helper()
	body, _, err := readDelimited(bytes.NewReader(frame), len(frame), nil)
	require.NoError(t, err)
	var env p2pdpb.PersistentConnectionRequest
	require.NoError(t, proto.UnmarshalOptions{AllowPartial: true}.Unmarshal(body, &env))
	return env.GetCallUnary().GetData()
}

// recordedReply decodes the case's reply frame.
func recordedReply(t *testing.T, tc unaryCase) unaryReply {
	t.Helper()
	require.NotNil(t, tc.Reply)
	reply, err := decodeUnaryReply(decodeFrame(t, tc.ReplyFrame, *tc.Reply), nil)
	require.NoError(t, err)
	return reply
}

// replayUnaryToHandler writes the recorded request frame to our handler on server, from client.
func replayUnaryToHandler(t *testing.T, server, client *Host, tc unaryCase) {
	frame, _ := tc.requestFrame(t)
	var calls atomic.Int32
	reply := unaryReply{}
	if tc.outcome(t) == outcomeReply {
		reply = recordedReply(t, tc)
	}
	want := requestData(t, frame)
	require.NoError(t, server.SetUnaryBytesHandler(tc.Protocol, func(_ context.Context, from PeerID, data []byte) ([]byte, error) {
		calls.Add(1)
		if from != client.ID() { // the envelope's peer field names another host: never trust it
			return nil, errors.New("caller taken from the envelope")
		}
		if !bytes.Equal(data, want) {
			return nil, errors.New("the handler got other data than the frame's")
		}
		if reply.isError {
			return nil, errors.New(reply.errorText)
		}
		return reply.response, nil
	}))
	s := rawStream(t, client, server, tc.Protocol)
	go func() { _, _ = s.Write(frame) }() // no half-close, as p2pd; fails once a refused frame's stream is closed
	got, err := readAllTimeout(t, s)
	switch tc.outcome(t) {
	case outcomeReply:
		require.NoError(t, err, "the handler closes the stream after its reply")
		assert.Equal(t, []byte(tc.ReplyFrame), got, "reply frame byte for byte")
		assert.EqualValues(t, 1, calls.Load())
	case outcomeNoReply:
		assert.Empty(t, got, "no reply")
		assert.Zero(t, calls.Load(), "a dropped request reached the handler")
		require.NotNil(t, tc.Error, "the case records what the caller saw")
		requireRawEnd(t, *tc.Error, err)
	}
}

// requireRawEnd checks how a raw stream ended for its reader against the recorded error: kind eof is
// a clean end (p2pd closes the stream), any other kind is a failure this test cannot tell apart.
func requireRawEnd(t *testing.T, want vectors.Error, err error) {
	t.Helper()
	if want.Kind != "eof" {
		t.Fatalf("a raw stream that ended with error kind %q: no Go outcome to compare it with", want.Kind)
	}
	require.NoError(t, err, "the stream ends cleanly (EOF), not with a reset")
}

// callUnaryStandIn calls a stand-in for the recorded callee on server with our caller on client.
func callUnaryStandIn(t *testing.T, client, server *Host, tc unaryCase) {
	ctx := testContext(t)
	frame, _ := tc.requestFrame(t)
	data := requestData(t, frame)
	outcome := tc.outcome(t)
	checked := make(chan error, 1)
	if outcome != outcomeOpenFailed {
		server.lh.SetStreamHandler(protocol.ID(tc.Protocol), func(s network.Stream) {
			defer s.Close()
			body, _, err := readDelimited(s, math.MaxInt32, nil)
			if err != nil {
				checked <- err
				return
			}
			req, err := decodeUnaryRequest(body)
			if err == nil && (req.proto != tc.Protocol || !bytes.Equal(req.peer, []byte(server.ID())) || !bytes.Equal(req.data, data)) {
				err = errors.New("the request differs from the recorded one (handle name, callee or data)")
			}
			checked <- err
			if outcome == outcomeReply {
				_, _ = s.Write(withCallID(t, tc.ReplyFrame, len(tc.Reply.LengthPrefix), req.callID))
			}
		})
		t.Cleanup(func() { server.lh.RemoveStreamHandler(protocol.ID(tc.Protocol)) })
	}
	resp, err := client.CallUnaryBytes(ctx, server.ID(), tc.Protocol, data)
	if tc.Request.BodyLength > client.cfg.MaxMessageSize {
		// Stricter than hivemind: our caller refuses a request over the cap before sending it; a
		// hivemind caller sends it and the callee's p2pd drops it.
		require.ErrorIs(t, err, ErrFrameTooLarge)
		return
	}
	if outcome != outcomeOpenFailed {
		select {
		case cerr := <-checked:
			require.NoError(t, cerr, "the stand-in read our request")
		case <-ctx.Done():
			t.Fatal("the stand-in never got our request")
		}
	}
	if tc.Error != nil {
		unaryCallerKinds.Require(t, *tc.Error, err)
	}
	switch outcome {
	case outcomeReply:
		reply := recordedReply(t, tc)
		if reply.isError {
			var remote *RemoteError
			require.ErrorAs(t, err, &remote)
			assert.Equal(t, reply.errorText, remote.Text)
			return
		}
		require.NoError(t, err)
		assert.True(t, bytes.Equal(reply.response, resp), "response\n got %x\nwant %x", resp, reply.response)
	case outcomeNoReply, outcomeOpenFailed:
		require.NotNil(t, tc.Error, "the case records what the caller saw")
	}
}

// withCallID returns a copy of a recorded frame whose callId (the first field of the body: 0a 10 + 16
// bytes, right after the length prefix) is replaced by id.
func withCallID(t *testing.T, frame []byte, prefixLen int, id []byte) []byte {
	t.Helper()
	out := bytes.Clone(frame)
	require.Equal(t, []byte{0x0a, callIDLen}, out[prefixLen:prefixLen+2])
	copy(out[prefixLen+2:], id)
	return out
}

// localErrorKinds maps the error kinds hivemind raises locally, before anything goes on the wire.
var localErrorKinds = vectors.Kinds{"protocol_not_supported": ErrProtocolNotSupported}

// TestUnaryLocalErrorVectors: the errors hivemind's caller raises without sending anything; our caller
// raises the same kind from the same call.
func TestUnaryLocalErrorVectors(t *testing.T) {
	vectors.Run(t, envelopeFile, "unary_local_errors", func(t *testing.T, tc struct {
		ClientCall string        `json:"client_call"`
		Error      vectors.Error `json:"error"`
	}) {
		forEachNet(t, func(t *testing.T, kind string) {
			server, client := hostPair(t, kind, Config{})
			ctx := testContext(t)
			if tc.Error.Kind != "protocol_not_supported" {
				t.Fatalf("no way to make our caller raise a local %q error from this case's fields", tc.Error.Kind)
			}
			const unserved = "TestServicer.rpc_not_registered" // the server serves nothing
			var err error
			switch tc.ClientCall {
			case "P2P.call_protobuf_handler", "P2P.iterate_protobuf_handler": // hivemind's stream calls
				err = streamCallError(ctx, client, server.ID(), unserved)
			case "P2P.call_unary_handler":
				_, err = client.CallUnaryBytes(ctx, server.ID(), unserved, nil)
			default:
				t.Fatalf("unknown client_call %q", tc.ClientCall)
			}
			localErrorKinds.Require(t, tc.Error, err)
		})
	})
}

// streamCallError makes a stream call with no request and returns its first error.
func streamCallError(ctx context.Context, h *Host, p PeerID, name string) error {
	cs, err := h.OpenBytesStream(ctx, p, name)
	if err != nil {
		return err
	}
	defer cs.Close()
	if err := cs.CloseSend(); err != nil {
		return err
	}
	_, err = cs.Recv()
	return err
}

// streamCallerKinds maps the error kinds a stream call ended with to our caller's errors.
var streamCallerKinds = vectors.Kinds{
	"remote_handler_error":  ErrRemoteHandler,
	"eof":                   ErrNoReply,
	"bad_frame_marker":      ErrBadFrameMarker,
	"message_too_large":     ErrFrameTooLarge,
	"protobuf_decode_error": ErrDecode,
}

// TestStreamLiveVectors replays every recorded stream call on both sides:
//   - handler: the recorded request bytes are written raw to a Go stream handler that answers as the
//     recorded handler did (see replayHandler); the reply bytes and how the stream ended are compared
//     with the recording. This is how a malformed request (malformed_request) is checked: hivemind's
//     handler stops at the bad frame, writes nothing more and closes the stream cleanly;
//   - caller (well-formed requests only: a Go caller never sends malformed ones): our caller sends the
//     recorded requests to a stand-in that checks the bytes and answers with the recorded reply bytes;
//     our caller returns the recorded responses (what hivemind's caller yielded, when recorded), then the
//     recorded error text or the end of the stream.
func TestStreamLiveVectors(t *testing.T) {
	vectors.Run(t, envelopeFile, "stream_live", func(t *testing.T, tc streamLiveCase) {
		forEachNet(t, func(t *testing.T, kind string) {
			a, b := hostPair(t, kind, Config{})
			t.Run("handler", func(t *testing.T) { replayStreamToHandler(t, a, b, tc) })
			if !tc.MalformedRequest {
				t.Run("caller", func(t *testing.T) { callStreamStandIn(t, a, b, tc) })
			}
		})
	})
}

// replayHandler is a Go stream handler that answers as a recorded handler did: the k-th request is
// answered with the k-th recorded response while recorded responses remain, the remaining responses
// follow the clean end of the input, and a recorded error frame becomes the handler's error after them.
// The requests it got are sent on got when it returns.
func replayHandler(responses [][]byte, errText *string, got chan<- [][]byte) StreamBytesHandler {
	return func(_ context.Context, _ PeerID, in *Requests, send func([]byte) error) error {
		var requests [][]byte
		defer func() { got <- requests }()
		next := 0
		for {
			p, ok, err := in.Next()
			if !ok {
				if err != nil {
					return err
				}
				break
			}
			requests = append(requests, p)
			if next < len(responses) {
				if err := send(responses[next]); err != nil {
					return err
				}
				next++
			}
		}
		for ; next < len(responses); next++ {
			if err := send(responses[next]); err != nil {
				return err
			}
		}
		if errText != nil {
			return errors.New(*errText)
		}
		return nil
	}
}

// splitRequest splits a request into its leading message frames and the bytes after them (the
// END_OF_STREAM frame of a well-formed request, or where a malformed one breaks the rules).
func splitRequest(request []byte) (frames [][]byte, rest []byte) {
	r := bytes.NewReader(request)
	for {
		start := len(request) - r.Len()
		marker, _, _, err := readStreamFrame(r, math.MaxInt, nil)
		if err != nil || marker != markerMessage {
			return frames, request[start:]
		}
		frames = append(frames, request[start:len(request)-r.Len()])
	}
}

// replayStreamToHandler writes the recorded request bytes to a replayHandler on server, from client.
// Each message frame that gets an answer is followed by reading that answer before anything else is
// written, so that what the handler wrote before a malformed frame does not race with it.
func replayStreamToHandler(t *testing.T, server, client *Host, tc streamLiveCase) {
	responses, errText := replyParts(t, tc.ReplyFrames)
	received := make(chan [][]byte, 1)
	require.NoError(t, server.SetStreamBytesHandler(tc.Protocol, replayHandler(responses, errText, received)))
	s := rawStream(t, client, server, tc.Protocol)
	frames, rest := splitRequest(tc.RequestBytes)
	var got []byte
	for k, f := range frames {
		_, err := s.Write(f)
		require.NoError(t, err)
		if k < len(responses) {
			_ = s.SetReadDeadline(time.Now().Add(testTimeout))
			marker, payload, _, err := readStreamFrame(s, math.MaxInt32, nil)
			require.NoError(t, err, "the answer to request %d", k)
			got = appendStreamFrame(got, marker, payload)
		}
	}
	_, err := s.Write(rest) // no half-close, as hivemind's caller
	require.NoError(t, err)
	tail, err := readAllTimeout(t, s)
	got = append(got, tail...)
	assert.Equal(t, []byte(tc.ReplyBytes), nonNil(got), "reply bytes")
	switch tc.EndedWith {
	case endedEOF:
		assert.NoError(t, err, "the stream ends cleanly (EOF), not with a reset")
	case endedError:
		assert.Error(t, err, "the stream ends with an error")
	default:
		t.Fatalf("unknown ended_with %q", tc.EndedWith)
	}
	requests := <-received
	if !tc.MalformedRequest {
		want := [][]byte{}
		for _, f := range frames {
			_, p, _, err := readStreamFrame(bytes.NewReader(f), math.MaxInt, nil)
			require.NoError(t, err)
			want = append(want, p)
		}
		assert.Equal(t, want, nonNilList(requests), "the requests the handler got")
	}
}

func nonNilList(l [][]byte) [][]byte {
	if l == nil {
		return [][]byte{}
	}
	return l
}

// callStreamStandIn makes our caller on client send the recorded requests to a stand-in for the
// recorded handler on server.
func callStreamStandIn(t *testing.T, client, server *Host, tc streamLiveCase) {
	ctx := testContext(t)
	seen := make(chan []byte, 1)
	server.lh.SetStreamHandler(protocol.ID(tc.Protocol), func(s network.Stream) {
		var buf bytes.Buffer
		for {
			marker, p, _, err := readStreamFrame(s, math.MaxInt32, nil)
			if err != nil {
				break
			}
			buf.Write(appendStreamFrame(nil, marker, p))
			if marker == markerEnd {
				break
			}
		}
		seen <- buf.Bytes()
		_, _ = s.Write(tc.ReplyBytes)
		if tc.EndedWith == endedError {
			_ = s.Reset()
		} else {
			_ = s.Close()
		}
	})
	t.Cleanup(func() { server.lh.RemoveStreamHandler(protocol.ID(tc.Protocol)) })

	frames, _ := splitRequest(tc.RequestBytes)
	cs, err := client.OpenBytesStream(ctx, server.ID(), tc.Protocol)
	require.NoError(t, err)
	defer cs.Close()
	for _, f := range frames {
		_, p, _, err := readStreamFrame(bytes.NewReader(f), math.MaxInt, nil)
		require.NoError(t, err)
		require.NoError(t, cs.Send(p))
	}
	require.NoError(t, cs.CloseSend())
	select {
	case req := <-seen:
		assert.Equal(t, []byte(tc.RequestBytes), req, "request bytes")
	case <-ctx.Done():
		t.Fatal("the stand-in never got our request")
	}

	responses, errText := replyParts(t, tc.ReplyFrames)
	got := [][]byte{}
	var end error
	for {
		p, err := cs.Recv()
		if err != nil {
			end = err
			break
		}
		got = append(got, p)
	}
	assert.Equal(t, responses, got, "responses")
	if tc.ParsedResponses != nil {
		assert.Equal(t, hexList(tc.ParsedResponses), got, "what hivemind's caller yielded")
	}
	switch {
	case errText != nil:
		var remote *RemoteError
		require.ErrorAs(t, end, &remote)
		assert.Equal(t, *errText, remote.Text)
	case tc.EndedWith == endedEOF:
		assert.ErrorIs(t, end, io.EOF)
	case tc.EndedWith == endedError:
		require.Error(t, end)
		assert.NotErrorIs(t, end, io.EOF)
		if tc.Error != nil {
			streamCallerKinds.Require(t, *tc.Error, end)
		}
	default:
		t.Fatalf("unknown ended_with %q", tc.EndedWith)
	}
}
