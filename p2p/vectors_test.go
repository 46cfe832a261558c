package p2p

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/proto/p2pdpb"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// Golden vectors of vectors/unary_envelope.json (captured between a live hivemind+p2pd node and a
// go-libp2p host) and of dht_proto.json's handle names and messages, checked byte for byte. Every case
// is read from its fields alone: protobuf views, presence flags, large forms and error frames are
// recognised wherever they occur (vectors/README.md).

const envelopeFile = "unary_envelope.json"

type callUnaryView struct {
	Peer        vectors.HexBytes `json:"peer_hex"`
	Proto       string           `json:"proto"`
	Data        vectors.Blob     `json:"data_hex"`
	DataLen     *int             `json:"data_len"`
	PeerB58     string           `json:"peer_b58"`
	DataDecoded *decodedView     `json:"data_decoded"`
}

type unaryResponseView struct {
	ResultWhich     *string          `json:"result_which"`
	Response        vectors.HexBytes `json:"response_hex"`
	Error           vectors.HexBytes `json:"error_hex"`
	ErrorText       *string          `json:"error_text"`
	ResponseDecoded *decodedView     `json:"response_decoded"`
}

// envelopeView is the vectors' view of one unary frame: the protobuf view of its
// PersistentConnectionRequest plus framing and derived fields.
type envelopeView struct {
	LengthPrefix    vectors.HexBytes   `json:"length_prefix_hex"`
	BodyLength      int                `json:"body_length"`
	MissingRequired []string           `json:"missing_required_fields"`
	MessageWhich    *string            `json:"message_which"`
	CallID          vectors.HexBytes   `json:"callId_hex"`
	CallUnary       *callUnaryView     `json:"callUnary"`
	UnaryResponse   *unaryResponseView `json:"unaryResponse"`
	// raw is the whole view, for the field-by-field comparison (protoView).
	raw json.RawMessage
}

// UnmarshalJSON implements json.Unmarshaler, keeping the raw view.
func (v *envelopeView) UnmarshalJSON(b []byte) error {
	type plain envelopeView
	if err := json.Unmarshal(b, (*plain)(v)); err != nil {
		return err
	}
	v.raw = append(json.RawMessage(nil), b...)
	return nil
}

// envelopeDerived are the keys of an envelope view that are not protobuf fields.
var envelopeDerived = map[string]bool{
	"length_prefix_hex": true, "body_length": true, "missing_required_fields": true,
	"peer_b58": true, "data_len": true, "data_decoded": true, "response_decoded": true, "error_text": true,
}

// unaryCase is a case of unary_inbound or unary_outbound.
type unaryCase struct {
	Direction    string       `json:"direction"`
	Protocol     string       `json:"protocol"`
	RequestFrame vectors.Blob `json:"request_frame_hex"`
	Request      envelopeView `json:"request"`
	// ReplyFrame is never large (vectors/README.md lists the fields that can be).
	ReplyFrame vectors.HexBytes `json:"reply_frame_hex"`
	Reply      *envelopeView    `json:"reply"`
	// Outcome is given by unary_outbound; a unary_inbound case has a reply.
	Outcome string         `json:"outcome"`
	Error   *vectors.Error `json:"error"`
}

// The outcomes of a unary call (vectors/README.md, unary_outbound).
const (
	outcomeReply      = "reply"
	outcomeNoReply    = "no_reply"
	outcomeOpenFailed = "stream_open_failed"
)

// unaryLists are the lists of unary calls; every check runs on both.
var unaryLists = []string{"unary_inbound", "unary_outbound"}

// outcome returns how the call ended: the recorded outcome, or "reply" for a case with a reply frame.
func (tc unaryCase) outcome(t *testing.T) string {
	t.Helper()
	switch {
	case tc.Outcome != "":
		return tc.Outcome
	case tc.ReplyFrame != nil && tc.Reply != nil:
		return outcomeReply
	}
	t.Fatal("the case has neither an outcome nor a reply frame")
	return ""
}

// requestFrame returns the recorded request frame. A large frame (given by length, digest, head and
// tail) is rebuilt from its view with our encoder around stand-in data (see standIn) and checked against
// what the recording gives: exact reports whether the rebuilt frame is the recorded one byte for byte.
func (tc unaryCase) requestFrame(t *testing.T) (frame []byte, exact bool) {
	t.Helper()
	if !tc.RequestFrame.Large() {
		require.True(t, tc.RequestFrame.Present(), "no request frame")
		return tc.RequestFrame.Exact(), true
	}
	cu := tc.Request.CallUnary
	require.NotNil(t, cu, "a large request frame can be rebuilt only from a callUnary view")
	data, exact := standIn(cu.Data)
	frame, err := encodeUnaryRequest(tc.Request.CallID, cu.Peer, cu.Proto, data)
	require.NoError(t, err)
	require.NoError(t, matchBlob(tc.RequestFrame, frame, !exact), "request frame rebuilt from its view")
	if !exact {
		t.Logf("the middle of the large data is not a run of one byte: the frame is rebuilt around stand-in bytes (length, head and tail checked, not the digest)")
	}
	return frame, exact
}

// decodeFrame splits one delimited frame into its body, requiring the frame to be exactly one, with
// the view's length prefix and body length.
func decodeFrame(t *testing.T, frame []byte, v envelopeView) []byte {
	t.Helper()
	r := bytes.NewReader(frame)
	body, _, err := readDelimited(r, len(frame), nil)
	require.NoError(t, err)
	assert.Zero(t, r.Len(), "bytes after the frame")
	assert.Len(t, body, v.BodyLength)
	assert.Equal(t, []byte(v.LengthPrefix), frame[:len(v.LengthPrefix)])
	return body
}

// checkEnvelope compares a frame with its view: framing, every protobuf field and presence flag, the
// required fields missing on the wire, and the derived fields (peer_b58, data_len, the decoded data and
// response, error_text). standIn: the frame was rebuilt around stand-in data.
func checkEnvelope(t *testing.T, frame []byte, v envelopeView, standIn bool) *p2pdpb.PersistentConnectionRequest {
	t.Helper()
	body := decodeFrame(t, frame, v)
	var env p2pdpb.PersistentConnectionRequest
	require.NoError(t, proto.UnmarshalOptions{AllowPartial: true}.Unmarshal(body, &env), "the envelope parses leniently")
	for _, d := range (protoView{derived: envelopeDerived, standIn: standIn}).diff("envelope", v.raw, env.ProtoReflect()) {
		t.Error(d)
	}
	assert.Equal(t, strings.Join(v.MissingRequired, ","), strings.Join(missingRequired(env.ProtoReflect()), ","), "required fields missing on the wire")
	if cu, got := v.CallUnary, env.GetCallUnary(); cu != nil && got != nil {
		if cu.PeerB58 != "" {
			id, err := PeerIDFromBytes(got.GetPeer())
			require.NoError(t, err)
			assert.Equal(t, cu.PeerB58, id.String())
		}
		if cu.DataLen != nil {
			assert.Len(t, got.GetData(), *cu.DataLen)
		}
		if cu.DataDecoded != nil {
			require.False(t, standIn, "decoded data recorded for data the recording does not give")
			checkDecoded(t, *cu.DataDecoded, got.GetData())
		}
	}
	if r, got := v.UnaryResponse, env.GetUnaryResponse(); r != nil && got != nil {
		if r.ResponseDecoded != nil {
			checkDecoded(t, *r.ResponseDecoded, got.GetResponse())
		}
		if r.ErrorText != nil {
			assert.Equal(t, *r.ErrorText, string(got.GetError()), "error_text is the error arm")
		}
	}
	return &env
}

// TestUnaryEnvelopeVectors: every recorded unary call, whichever side made it. Our decoder reads each
// request and reply frame to its recorded protobuf view (presence flags included), our encoder rebuilds
// each frame byte for byte, and our handler-side decoder refuses exactly the requests p2pd dropped.
func TestUnaryEnvelopeVectors(t *testing.T) {
	for _, list := range unaryLists {
		t.Run(list, func(t *testing.T) {
			vectors.Run(t, envelopeFile, list, checkUnaryCase)
		})
	}
}

func checkUnaryCase(t *testing.T, tc unaryCase) {
	frame, exact := tc.requestFrame(t)
	env := checkEnvelope(t, frame, tc.Request, !exact)
	checkPresence(t, frame, env, tc.Request)

	// What our handler does with the request: refuse it (as p2pd does without a reply) or accept it.
	body, _, err := readDelimited(bytes.NewReader(frame), DefaultMaxMessageSize, nil)
	if err == nil {
		_, err = decodeUnaryRequest(body)
	}
	switch tc.outcome(t) {
	case outcomeReply:
		require.NoError(t, err, "a request p2pd answered")
		reply := checkEnvelope(t, tc.ReplyFrame, *tc.Reply, false)
		checkPresence(t, tc.ReplyFrame, reply, *tc.Reply)
		rbody := decodeFrame(t, tc.ReplyFrame, *tc.Reply)
		got, err := decodeUnaryReply(rbody, tc.Request.CallID)
		require.NoError(t, err)
		rebuilt, err := encodeUnaryReply(got.callID, got.response, got.isError, got.errorText)
		require.NoError(t, err)
		assert.Equal(t, []byte(tc.ReplyFrame), rebuilt, "reply frame rebuilt byte for byte")
		_, err = decodeUnaryReply(rbody, make([]byte, callIDLen))
		assert.ErrorIs(t, err, ErrInvalidEnvelope, "a reply for another call is refused")
	case outcomeNoReply:
		require.Error(t, err, "a request p2pd dropped without a reply")
		assert.Nil(t, tc.Reply)
	case outcomeOpenFailed: // the request never reached a handler: the live test checks the caller's error
		require.NotNil(t, tc.Error, "a failed stream open records its error")
	default:
		t.Fatalf("unknown outcome %q", tc.Outcome)
	}
}

// checkPresence checks proto2 presence beyond the view's flags (which checkEnvelope compares): a
// required field absent on the wire makes our strict decoder fail with ErrDecode, and a frame without
// one re-encodes byte for byte, with our encoder for a request, so a present-but-empty field (data
// 1a 00) is emitted, also from nil.
func checkPresence(t *testing.T, frame []byte, env *p2pdpb.PersistentConnectionRequest, v envelopeView) {
	t.Helper()
	body := decodeFrame(t, frame, v)
	_, err := decodeEnvelope(body)
	if len(v.MissingRequired) > 0 {
		assert.ErrorIs(t, err, ErrDecode, "required fields %v absent", v.MissingRequired)
		return
	}
	require.NoError(t, err)
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(env)
	require.NoError(t, err)
	assert.Equal(t, body, again, "the envelope re-encodes byte for byte")
	if cu := env.GetCallUnary(); cu != nil {
		rebuilt, err := encodeUnaryRequest(env.GetCallId(), cu.GetPeer(), cu.GetProto(), cu.GetData())
		require.NoError(t, err)
		assert.Equal(t, frame, rebuilt, "our encoder rebuilds the request frame byte for byte")
		if len(cu.GetData()) == 0 {
			rebuilt, err := encodeUnaryRequest(env.GetCallId(), cu.GetPeer(), cu.GetProto(), nil)
			require.NoError(t, err)
			assert.Equal(t, frame, rebuilt, "empty data from nil is emitted present (1a 00)")
		}
	}
}

// TestStreamFramingVectors: hivemind's send_protobuf output. Every frame of an exact recording is read
// back as recorded (marker, size, fields) and re-encoded byte for byte; a message frame re-encodes from
// its parsed message; an error frame is RPCError{message} (or END_OF_STREAM when message is absent). A
// large recording is checked from its messages (marker, type, size) and its length, head and tail, with
// the frame written by writeFrame around stand-in payload bytes.
func TestStreamFramingVectors(t *testing.T) {
	vectors.Run(t, envelopeFile, "stream_framing", func(t *testing.T, tc struct {
		Messages   []decodedView `json:"messages"`
		Bytes      vectors.Blob  `json:"bytes_hex"`
		ParsedBack []decodedView `json:"parsed_back"`
	}) {
		require.Equal(t, len(tc.Messages), len(tc.ParsedBack), "messages sent and parsed back")
		total := 0
		for i, m := range tc.Messages {
			require.NotNil(t, m.SerializedLen, "message %d has no serialized_len", i)
			total += streamHeaderLen + *m.SerializedLen
		}
		require.Equal(t, total, tc.Bytes.Len(), "the frames of the messages make up the bytes")
		if tc.Bytes.Large() {
			checkLargeFraming(t, tc.Messages, tc.Bytes)
			return
		}
		r := bytes.NewReader(tc.Bytes.Exact())
		var rebuilt []byte
		for i, sent := range tc.Messages {
			marker, payload, _, err := readStreamFrame(r, math.MaxInt, nil)
			require.NoError(t, err, "frame %d", i)
			assert.Equal(t, markerByte(t, sent.Marker), marker, "frame %d marker", i)
			assert.Equal(t, markerByte(t, tc.ParsedBack[i].Marker), marker, "frame %d marker read back", i)
			checkDecoded(t, sent, payload)
			m := checkDecoded(t, tc.ParsedBack[i], payload)
			checkFramePayload(t, marker, payload, m)
			rebuilt = appendStreamFrame(rebuilt, marker, payload)
		}
		_, _, _, err := readStreamFrame(r, math.MaxInt, nil)
		assert.ErrorIs(t, err, io.EOF, "nothing after the frames")
		assert.Equal(t, tc.Bytes.Exact(), rebuilt)
	})
}

// checkFramePayload checks that we would write payload for m: a message re-encodes to it; an error frame
// is encodeRPCError(message), or empty (END_OF_STREAM) when the message field is absent.
func checkFramePayload(t *testing.T, marker byte, payload []byte, m proto.Message) {
	t.Helper()
	if marker == markerEnd {
		e, ok := m.(*p2pdpb.RPCError)
		require.True(t, ok, "an error frame holds an RPCError, not %T", m)
		if e.Message == nil {
			assert.Empty(t, payload, "END_OF_STREAM")
			assert.Equal(t, endOfStreamFrame(), appendStreamFrame(nil, marker, payload))
		} else {
			assert.Equal(t, encodeRPCError(e.GetMessage()), payload, "RPCError{message}")
		}
		return
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	require.NoError(t, err)
	assert.Equal(t, payload, nonNil(again), "the message re-encodes byte for byte")
}

// checkLargeFraming checks a large stream_framing recording from its messages and its length, head and
// tail: the first frame's header is in the head, our reader accepts the announced length (or refuses
// it when over the cap), and writeFrame writes a single message around stand-in payload bytes to the
// recorded length, head and tail (and digest, when the stand-in is the real payload).
func checkLargeFraming(t *testing.T, messages []decodedView, all vectors.Blob) {
	t.Helper()
	first := messages[0]
	head := all.Head()
	require.GreaterOrEqual(t, len(head), streamHeaderLen, "the head holds the first frame's header")
	assert.Equal(t, appendStreamHeader(nil, markerByte(t, first.Marker), *first.SerializedLen), head[:streamHeaderLen])
	_, _, _, err := readStreamFrame(bytes.NewReader(head), DefaultMaxMessageSize, nil)
	if *first.SerializedLen > DefaultMaxMessageSize {
		assert.ErrorIs(t, err, ErrFrameTooLarge)
	} else {
		assert.ErrorIs(t, err, ErrTruncatedFrame, "the announced length is accepted; the head ends inside the payload")
	}
	require.Len(t, messages, 1, "a large recording of several frames cannot be rebuilt from its head and tail")
	data := fillBetween(head[streamHeaderLen:], all.Tail(), *first.SerializedLen)
	var buf bytes.Buffer
	require.NoError(t, writeFrame(&buf, markerByte(t, first.Marker), data))
	require.NoError(t, matchBlob(all, buf.Bytes(), true), "one frame written around a stand-in payload")
	if all.Match(buf.Bytes()) != nil {
		t.Logf("the middle of the payload is not a run of one byte: length, head and tail checked, not the digest")
		return
	}
	// The stand-in is the real payload (the digest matches).
	require.NoError(t, unmarshalInto(data, messageType(t, first.Type).New().Interface()), "the payload is a %s", first.Type)
}

// markerByte maps a frame marker of the vectors to its byte.
func markerByte(t *testing.T, marker string) byte {
	t.Helper()
	switch marker {
	case "message":
		return markerMessage
	case "error":
		return markerEnd
	}
	t.Fatalf("unknown frame marker %q", marker)
	return 0
}

// streamKinds maps the error kinds of a stream frame read.
var streamKinds = vectors.Kinds{
	"bad_frame_marker":      ErrBadFrameMarker,
	"truncated":             ErrTruncatedFrame,
	"message_too_large":     ErrFrameTooLarge,
	"protobuf_decode_error": ErrDecode,
	"eof":                   io.EOF,
}

// TestStreamDecodeVectors: receive_protobuf on odd inputs; what it received, or its error kind.
func TestStreamDecodeVectors(t *testing.T) {
	vectors.Run(t, envelopeFile, "stream_decode", func(t *testing.T, tc struct {
		Input    vectors.HexBytes `json:"input_hex"`
		Received *decodedView     `json:"received"`
		Error    *vectors.Error   `json:"error"`
	}) {
		marker, payload, _, err := readStreamFrame(bytes.NewReader(tc.Input), DefaultMaxMessageSize, nil)
		if tc.Error != nil {
			if err == nil && marker == markerEnd { // an error frame whose payload is not an RPCError
				_, err = decodeRPCError(payload)
			}
			streamKinds.Require(t, *tc.Error, err)
			return
		}
		require.NoError(t, err)
		require.NotNil(t, tc.Received, "the case records neither what was received nor an error")
		assert.Equal(t, markerByte(t, tc.Received.Marker), marker)
		m := checkDecoded(t, *tc.Received, payload)
		checkFramePayload(t, marker, payload, m)
	})
}

// streamLiveCase is a case of stream_live.
type streamLiveCase struct {
	Protocol         string             `json:"protocol"`
	RequestBytes     vectors.HexBytes   `json:"request_bytes_hex"`
	RequestFrames    []vectors.HexBytes `json:"request_frames_hex"`
	ReplyBytes       vectors.HexBytes   `json:"reply_bytes_hex"`
	ReplyFrames      []vectors.HexBytes `json:"reply_frames_hex"`
	EndedWith        string             `json:"ended_with"`
	Error            *vectors.Error     `json:"error"`
	MalformedRequest bool               `json:"malformed_request"`
	ParsedResponses  []vectors.HexBytes `json:"hivemind_parsed_responses_hex"`
}

// The ways a stream call ended (vectors/README.md, stream_live).
const (
	endedEOF   = "eof"
	endedError = "error"
)

// TestStreamLiveFramingVectors: the frames of live stream calls split and re-join exactly; a request follows
// the framing rules (message frames, then END_OF_STREAM) unless the case marks it malformed, and then
// our reader or our rules catch it; hivemind's caller yielded the payloads of the reply's message frames.
func TestStreamLiveFramingVectors(t *testing.T) {
	vectors.Run(t, envelopeFile, "stream_live", func(t *testing.T, tc streamLiveCase) {
		require.Contains(t, []string{endedEOF, endedError}, tc.EndedWith)
		assert.Equal(t, []byte(tc.ReplyBytes), splitFrames(t, tc.ReplyBytes, tc.ReplyFrames), "reply frames")
		assert.Equal(t, []byte(tc.RequestBytes), bytes.Join(hexList(tc.RequestFrames), nil), "request frames")
		reason := malformation(tc.RequestBytes)
		if tc.MalformedRequest {
			assert.NotEmpty(t, reason, "a request marked malformed that follows the framing rules")
		} else {
			assert.Empty(t, reason, "request")
			splitFrames(t, tc.RequestBytes, tc.RequestFrames)
		}
		if tc.ParsedResponses != nil {
			responses, _ := replyParts(t, tc.ReplyFrames)
			assert.Equal(t, hexList(tc.ParsedResponses), responses, "what hivemind's caller yielded")
		}
	})
}

// splitFrames reads all as stream frames, requiring each to re-encode to the recorded frame, and returns
// them joined.
func splitFrames(t *testing.T, all []byte, frames []vectors.HexBytes) []byte {
	t.Helper()
	r := bytes.NewReader(all)
	var joined []byte
	for i, f := range frames {
		marker, payload, _, err := readStreamFrame(r, math.MaxInt, nil)
		require.NoError(t, err, "frame %d", i)
		assert.Equal(t, []byte(f), appendStreamFrame(nil, marker, payload), "frame %d", i)
		joined = append(joined, f...)
	}
	_, _, _, err := readStreamFrame(r, math.MaxInt, nil)
	assert.True(t, errors.Is(err, io.EOF), "only whole frames: %v", err)
	return nonNil(joined)
}

// malformation says how request breaks hivemind's framing rules for a request (message frames, then
// one END_OF_STREAM frame whose payload is an RPCError, then nothing), or "" when it follows them.
func malformation(request []byte) string {
	r := bytes.NewReader(request)
	for {
		marker, payload, _, err := readStreamFrame(r, math.MaxInt, nil)
		switch {
		case errors.Is(err, io.EOF):
			return "no end-of-stream frame"
		case err != nil:
			return err.Error()
		case marker == markerMessage:
			continue
		}
		if _, err := decodeRPCError(payload); err != nil {
			return "end-of-stream frame: " + err.Error()
		}
		if len(payload) > 0 {
			return "an end-of-stream frame with a payload"
		}
		if r.Len() > 0 {
			return "bytes after the end-of-stream frame"
		}
		return ""
	}
}

// replyParts returns the payloads of a reply's message frames and, when the reply ends with an error
// frame, its RPCError message.
func replyParts(t *testing.T, frames []vectors.HexBytes) (responses [][]byte, errText *string) {
	t.Helper()
	responses = [][]byte{}
	for i, f := range frames {
		marker, payload, _, err := readStreamFrame(bytes.NewReader(f), math.MaxInt, nil)
		require.NoError(t, err)
		if marker == markerEnd {
			require.Equal(t, len(frames)-1, i, "an error frame is the last frame of a reply")
			text, err := decodeRPCError(payload)
			require.NoError(t, err)
			return responses, &text
		}
		responses = append(responses, payload)
	}
	return responses, nil
}

func hexList(l []vectors.HexBytes) [][]byte {
	out := make([][]byte, len(l))
	for i, b := range l {
		out[i] = b
	}
	return out
}

// TestHandleNameVectors: handle names are built exactly as hivemind builds them.
func TestHandleNameVectors(t *testing.T) {
	vectors.Run(t, "dht_proto.json", "handle_names", func(t *testing.T, tc struct {
		ServicerClass string  `json:"servicer_class"`
		Method        string  `json:"method"`
		Namespace     *string `json:"namespace"`
		HandleName    string  `json:"handle_name"`
	}) {
		ns := Namespace{}
		if tc.Namespace != nil {
			ns = NamespaceOf(*tc.Namespace)
		}
		assert.Equal(t, tc.HandleName, HandleName(ns, tc.ServicerClass, tc.Method))
		assert.NoError(t, checkHandleName(tc.HandleName))
	})
}

// TestDHTMessagesThroughEnvelope: every dht_proto.json message decodes to its recorded fields,
// re-encodes byte for byte, and travels as callUnary data and as a response unchanged.
func TestDHTMessagesThroughEnvelope(t *testing.T) {
	vectors.Run(t, "dht_proto.json", "messages", func(t *testing.T, tc struct {
		Type       string           `json:"type"`
		Fields     json.RawMessage  `json:"fields"`
		Serialized vectors.HexBytes `json:"serialized_hex"`
	}) {
		m := checkDecoded(t, decodedView{Type: tc.Type, Fields: tc.Fields}, tc.Serialized)
		checkFramePayload(t, markerMessage, tc.Serialized, m)

		frame, err := encodeUnaryRequest(make([]byte, callIDLen), []byte("peer"), "DHTProtocol.rpc_x", tc.Serialized)
		require.NoError(t, err)
		body, _, err := readDelimited(bytes.NewReader(frame), DefaultMaxMessageSize, nil)
		require.NoError(t, err)
		req, err := decodeUnaryRequest(body)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(tc.Serialized, req.data), "request data")

		reply, err := encodeUnaryReply(make([]byte, callIDLen), tc.Serialized, false, "")
		require.NoError(t, err)
		body, _, err = readDelimited(bytes.NewReader(reply), DefaultMaxMessageSize, nil)
		require.NoError(t, err)
		got, err := decodeUnaryReply(body, make([]byte, callIDLen))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(tc.Serialized, got.response), "response")
	})
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
