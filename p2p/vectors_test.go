package p2p

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// Golden vectors of vectors/unary_envelope.json (captured between a live hivemind+p2pd node and a
// go-libp2p host), identity.json and dht_proto.json, checked byte for byte.

type callUnaryView struct {
	Peer         vectors.HexBytes `json:"peer_hex"`
	PeerPresent  bool             `json:"peer_present"`
	Proto        string           `json:"proto"`
	ProtoPresent bool             `json:"proto_present"`
	Data         vectors.HexBytes `json:"data_hex"`
	DataLen      int              `json:"data_len"`
	DataSHA256   vectors.HexBytes `json:"data_sha256_hex"`
	DataPresent  bool             `json:"data_present"`
	PeerB58      string           `json:"peer_b58"`
}

type unaryResponseView struct {
	ResultWhich     string           `json:"result_which"`
	Response        vectors.HexBytes `json:"response_hex"`
	ResponsePresent bool             `json:"response_present"`
	Error           vectors.HexBytes `json:"error_hex"`
	ErrorPresent    bool             `json:"error_present"`
	ErrorText       *string          `json:"error_text"`
}

type envelopeView struct {
	LengthPrefix    vectors.HexBytes   `json:"length_prefix_hex"`
	BodyLength      int                `json:"body_length"`
	MissingRequired []string           `json:"missing_required_fields"`
	MessageWhich    string             `json:"message_which"`
	CallID          vectors.HexBytes   `json:"callId_hex"`
	CallIDPresent   bool               `json:"callId_present"`
	CallUnary       *callUnaryView     `json:"callUnary"`
	UnaryResponse   *unaryResponseView `json:"unaryResponse"`
}

type unaryCase struct {
	Name         string           `json:"name"`
	Protocol     string           `json:"protocol"`
	RequestFrame vectors.HexBytes `json:"request_frame_hex"`
	// The large form of request_frame (request_frame_len, …), when the frame is over 4096 bytes.
	RequestFrameLen    int              `json:"request_frame_len"`
	RequestFrameSHA256 vectors.HexBytes `json:"request_frame_sha256_hex"`
	RequestFrameHead   vectors.HexBytes `json:"request_frame_head_hex"`
	Request            envelopeView     `json:"request"`
	ReplyFrame         vectors.HexBytes `json:"reply_frame_hex"`
	Reply              *envelopeView    `json:"reply"`
	Outcome            string           `json:"outcome"`
	Error              *vectors.Error   `json:"error"`
}

type streamLiveCase struct {
	Name          string             `json:"name"`
	Direction     string             `json:"direction"`
	Protocol      string             `json:"protocol"`
	RequestBytes  vectors.HexBytes   `json:"request_bytes_hex"`
	RequestFrames []vectors.HexBytes `json:"request_frames_hex"`
	ReplyBytes    vectors.HexBytes   `json:"reply_bytes_hex"`
	ReplyFrames   []vectors.HexBytes `json:"reply_frames_hex"`
	EndedWith     string             `json:"ended_with"`
}

type framedMessage struct {
	Marker        string `json:"marker"`
	Type          string `json:"type"`
	SerializedLen int    `json:"serialized_len"`
}

type streamFramingCase struct {
	Name       string           `json:"name"`
	Messages   []framedMessage  `json:"messages"`
	Bytes      vectors.HexBytes `json:"bytes_hex"`
	BytesLen   int              `json:"bytes_len"`
	BytesSHA   vectors.HexBytes `json:"bytes_sha256_hex"`
	BytesHead  vectors.HexBytes `json:"bytes_head_hex"`
	BytesTail  vectors.HexBytes `json:"bytes_tail_hex"`
	ParsedBack []framedMessage  `json:"parsed_back"`
}

type streamDecodeCase struct {
	Name     string           `json:"name"`
	Input    vectors.HexBytes `json:"input_hex"`
	Received *framedMessage   `json:"received"`
	Error    *vectors.Error   `json:"error"`
}

type unaryEnvelopeFile struct {
	UnaryInbound     []unaryCase `json:"unary_inbound"`
	UnaryOutbound    []unaryCase `json:"unary_outbound"`
	UnaryLocalErrors []struct {
		Name  string        `json:"name"`
		Error vectors.Error `json:"error"`
	} `json:"unary_local_errors"`
	StreamLive    []streamLiveCase    `json:"stream_live"`
	StreamFraming []streamFramingCase `json:"stream_framing"`
	StreamDecode  []streamDecodeCase  `json:"stream_decode"`
}

func loadEnvelopeVectors(t testing.TB) unaryEnvelopeFile {
	t.Helper()
	var f unaryEnvelopeFile
	vectors.Load(t, "unary_envelope.json", &f)
	require.NotEmpty(t, f.UnaryInbound)
	require.NotEmpty(t, f.UnaryOutbound)
	return f
}

// messageType finds a hivemind message type by its short name (the proto package is not on the wire).
func messageType(t *testing.T, name string) protoreflect.MessageType {
	t.Helper()
	var found protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		d := mt.Descriptor()
		if string(d.Name()) == name && (d.ParentFile().Package() == "hivemind.dht" || d.ParentFile().Package() == "hivemind.p2pd") {
			found = mt
			return false
		}
		return true
	})
	require.NotNil(t, found, "message type %s", name)
	return found
}

// checkRequestView asserts that a decoded request matches the vector's protobuf view.
func checkRequestView(t *testing.T, req unaryRequest, v envelopeView) {
	t.Helper()
	require.Equal(t, "callUnary", v.MessageWhich)
	require.NotNil(t, v.CallUnary)
	assert.Equal(t, []byte(v.CallID), req.callID)
	assert.Equal(t, []byte(v.CallUnary.Peer), req.peer)
	assert.Equal(t, v.CallUnary.Proto, req.proto)
	if v.CallUnary.Data != nil || v.CallUnary.DataSHA256 == nil {
		assert.Equal(t, []byte(v.CallUnary.Data), req.data)
	} else {
		sum := sha256.Sum256(req.data)
		assert.Equal(t, []byte(v.CallUnary.DataSHA256), sum[:])
	}
	id, err := PeerIDFromBytes(req.peer)
	require.NoError(t, err)
	assert.Equal(t, v.CallUnary.PeerB58, id.String())
}

// checkReplyView asserts that a decoded reply matches the vector's protobuf view.
func checkReplyView(t *testing.T, reply unaryReply, v *envelopeView) {
	t.Helper()
	require.NotNil(t, v)
	require.Equal(t, "unaryResponse", v.MessageWhich)
	assert.Equal(t, []byte(v.CallID), reply.callID)
	r := v.UnaryResponse
	require.NotNil(t, r)
	assert.Equal(t, r.ResultWhich == "error", reply.isError)
	if reply.isError {
		require.NotNil(t, r.ErrorText)
		assert.Equal(t, *r.ErrorText, reply.errorText)
		assert.Equal(t, string(r.Error), reply.errorText)
	} else {
		assert.Equal(t, []byte(r.Response), reply.response)
	}
}

// decodeFrame reads one delimited frame from frame and requires it to be the whole input.
func decodeFrame(t *testing.T, frame []byte, v envelopeView) []byte {
	t.Helper()
	r := bytes.NewReader(frame)
	body, _, err := readDelimited(r, DefaultMaxMessageSize, nil)
	require.NoError(t, err)
	assert.Zero(t, r.Len(), "bytes after the frame")
	assert.Len(t, body, v.BodyLength)
	assert.Equal(t, []byte(v.LengthPrefix), frame[:len(v.LengthPrefix)])
	return body
}

// TestUnaryInboundVectors: hivemind (through p2pd) called a Go handler. Our decoder must read its
// request frames, and our encoder must rebuild the Go host's reply frames byte for byte.
func TestUnaryInboundVectors(t *testing.T) {
	for _, tc := range loadEnvelopeVectors(t).UnaryInbound {
		t.Run(tc.Name, func(t *testing.T) {
			assert.Empty(t, tc.Request.MissingRequired)
			if tc.RequestFrame != nil {
				req, err := decodeUnaryRequest(decodeFrame(t, tc.RequestFrame, tc.Request))
				require.NoError(t, err)
				checkRequestView(t, req, tc.Request)
				assert.Equal(t, tc.Protocol, req.proto)
			} else { // large form: the announced length is read (and checked) from the head alone
				require.NotNil(t, tc.RequestFrameHead)
				_, _, err := readDelimited(bytes.NewReader(tc.RequestFrameHead), DefaultMaxMessageSize, nil)
				require.ErrorIs(t, err, ErrTruncatedFrame)
				assert.Equal(t, tc.RequestFrameLen, len(tc.Request.LengthPrefix)+tc.Request.BodyLength)
			}

			reply, err := decodeUnaryReply(decodeFrame(t, tc.ReplyFrame, *tc.Reply), tc.Request.CallID)
			require.NoError(t, err)
			checkReplyView(t, reply, tc.Reply)
			rebuilt, err := encodeUnaryReply(tc.Request.CallID, reply.response, reply.isError, reply.errorText)
			require.NoError(t, err)
			assert.Equal(t, []byte(tc.ReplyFrame), rebuilt, "reply frame byte for byte")
			if tc.Error != nil {
				assert.Equal(t, "remote_handler_error", tc.Error.Kind)
				assert.True(t, reply.isError)
			}
		})
	}
}

// TestUnaryOutboundVectors: the Go host called hivemind. Our encoder must produce the request frames
// byte for byte (required fields, empty data as 1a 00), and our handler-side decoder must reject exactly
// the requests p2pd dropped without a reply.
func TestUnaryOutboundVectors(t *testing.T) {
	for _, tc := range loadEnvelopeVectors(t).UnaryOutbound {
		t.Run(tc.Name, func(t *testing.T) {
			switch tc.Outcome {
			case "reply", "stream_open_failed":
				cu := tc.Request.CallUnary
				require.NotNil(t, cu)
				frame, err := encodeUnaryRequest(tc.Request.CallID, cu.Peer, cu.Proto, cu.Data)
				require.NoError(t, err)
				assert.Equal(t, []byte(tc.RequestFrame), frame, "request frame byte for byte")
				req, err := decodeUnaryRequest(decodeFrame(t, frame, tc.Request))
				require.NoError(t, err)
				checkRequestView(t, req, tc.Request)
				if tc.Outcome == "stream_open_failed" {
					assert.Equal(t, "protocol_not_supported", tc.Error.Kind)
					return
				}
				reply, err := decodeUnaryReply(decodeFrame(t, tc.ReplyFrame, *tc.Reply), tc.Request.CallID)
				require.NoError(t, err)
				checkReplyView(t, reply, tc.Reply)
				// A reply for another call is refused.
				_, err = decodeUnaryReply(decodeFrame(t, tc.ReplyFrame, *tc.Reply), make([]byte, callIDLen))
				assert.ErrorIs(t, err, ErrInvalidEnvelope)
			case "no_reply":
				require.Equal(t, "eof", tc.Error.Kind)
				if tc.RequestFrame == nil { // the oversize frame: rejected from its length alone
					_, _, err := readDelimited(bytes.NewReader(tc.RequestFrameHead), DefaultMaxMessageSize, nil)
					require.ErrorIs(t, err, ErrFrameTooLarge)
					rebuilt, err := encodeUnaryRequest(tc.Request.CallID, tc.Request.CallUnary.Peer,
						tc.Request.CallUnary.Proto, make([]byte, tc.Request.CallUnary.DataLen))
					require.NoError(t, err)
					sum := sha256.Sum256(rebuilt)
					assert.Equal(t, []byte(tc.RequestFrameSHA256), sum[:], "oversize frame rebuilt byte for byte")
					assert.Len(t, rebuilt, tc.RequestFrameLen)
					return
				}
				_, err := decodeUnaryRequest(decodeFrame(t, tc.RequestFrame, tc.Request))
				require.Error(t, err)
				if len(tc.Request.MissingRequired) > 0 {
					assert.ErrorIs(t, err, ErrDecode, "missing required field %v", tc.Request.MissingRequired)
				} else {
					assert.ErrorIs(t, err, ErrInvalidEnvelope)
				}
			default:
				t.Fatalf("unknown outcome %q", tc.Outcome)
			}
		})
	}
}

// TestRequiredFieldPresence: proto2 presence is kept — present-but-empty data decodes, absent data does
// not, and our encoder never drops an empty required field.
func TestRequiredFieldPresence(t *testing.T) {
	cases := map[string]unaryCase{}
	for _, tc := range loadEnvelopeVectors(t).UnaryOutbound {
		cases[tc.Name] = tc
	}
	empty, missing := cases["go_ping_empty"], cases["go_no_reply_missing_data"]
	require.True(t, empty.Request.CallUnary.DataPresent)
	require.False(t, missing.Request.CallUnary.DataPresent)

	req, err := decodeUnaryRequest(decodeFrame(t, empty.RequestFrame, empty.Request))
	require.NoError(t, err)
	assert.NotNil(t, req.data)
	assert.Empty(t, req.data)
	_, err = decodeUnaryRequest(decodeFrame(t, missing.RequestFrame, missing.Request))
	assert.ErrorIs(t, err, ErrDecode)

	frame, err := encodeUnaryRequest(make([]byte, callIDLen), []byte{}, "X.rpc_y", nil)
	require.NoError(t, err)
	assert.True(t, bytes.HasSuffix(frame, []byte{0x1a, 0x00}), "empty data emitted as 1a 00: %x", frame)
}

// TestUnaryLocalErrorVectors: hivemind's local error kinds map onto our sentinels.
func TestUnaryLocalErrorVectors(t *testing.T) {
	kinds := map[string]error{"protocol_not_supported": ErrProtocolNotSupported}
	for _, tc := range loadEnvelopeVectors(t).UnaryLocalErrors {
		t.Run(tc.Name, func(t *testing.T) {
			assert.Contains(t, kinds, tc.Error.Kind)
		})
	}
}

// TestStreamFramingVectors: hivemind's send_protobuf output, re-parsed and re-encoded byte for byte.
func TestStreamFramingVectors(t *testing.T) {
	for _, tc := range loadEnvelopeVectors(t).StreamFraming {
		t.Run(tc.Name, func(t *testing.T) {
			if tc.Bytes == nil { // large form: rebuild the FindResponse the note describes
				require.Equal(t, "large_find_response", tc.Name)
				payload, err := proto.Marshal(&dhtpb.FindResponse{Results: []*dhtpb.FindResult{{
					Type: dhtpb.ResultType_FOUND_REGULAR, Value: bytes.Repeat([]byte{'Z'}, 70000), ExpirationTime: 2e9,
				}}})
				require.NoError(t, err)
				require.Len(t, payload, tc.Messages[0].SerializedLen)
				var buf bytes.Buffer
				require.NoError(t, writeFrame(&buf, markerMessage, payload))
				sum := sha256.Sum256(buf.Bytes())
				assert.Equal(t, tc.BytesLen, buf.Len())
				assert.Equal(t, []byte(tc.BytesSHA), sum[:])
				assert.Equal(t, []byte(tc.BytesHead), buf.Bytes()[:len(tc.BytesHead)])
				assert.Equal(t, []byte(tc.BytesTail), buf.Bytes()[buf.Len()-len(tc.BytesTail):])
				return
			}
			r := bytes.NewReader(tc.Bytes)
			var rebuilt []byte
			for i, want := range tc.ParsedBack {
				marker, payload, _, err := readStreamFrame(r, DefaultMaxMessageSize, nil)
				require.NoError(t, err, "frame %d", i)
				assert.Equal(t, want.Marker == "error", marker == markerEnd, "frame %d marker", i)
				assert.Len(t, payload, want.SerializedLen)
				require.NoError(t, proto.Unmarshal(payload, messageType(t, want.Type).New().Interface()))
				if tc.Messages[i].Marker == "error" && want.SerializedLen == 0 {
					assert.Equal(t, endOfStreamFrame(), appendStreamFrame(nil, marker, payload))
				}
				rebuilt = appendStreamFrame(rebuilt, marker, payload)
			}
			_, _, _, err := readStreamFrame(r, DefaultMaxMessageSize, nil)
			assert.ErrorIs(t, err, io.EOF)
			assert.Equal(t, []byte(tc.Bytes), rebuilt)
		})
	}
}

// TestStreamFramingErrorFrame: a handler's error frame is RPCError{message} with the 01 marker.
func TestStreamFramingErrorFrame(t *testing.T) {
	for _, tc := range loadEnvelopeVectors(t).StreamFraming {
		if tc.Name == "error_frame" {
			assert.Equal(t, []byte(tc.Bytes), appendStreamFrame(nil, markerEnd, encodeRPCError("boom")))
			return
		}
	}
	t.Fatal("no error_frame case")
}

// TestStreamDecodeVectors: receive_protobuf on odd inputs; error kinds map onto our sentinels.
func TestStreamDecodeVectors(t *testing.T) {
	kinds := map[string]error{"bad_frame_marker": ErrBadFrameMarker, "truncated": ErrTruncatedFrame}
	for _, tc := range loadEnvelopeVectors(t).StreamDecode {
		t.Run(tc.Name, func(t *testing.T) {
			marker, payload, _, err := readStreamFrame(bytes.NewReader(tc.Input), DefaultMaxMessageSize, nil)
			if tc.Error != nil {
				require.Contains(t, kinds, tc.Error.Kind)
				assert.ErrorIs(t, err, kinds[tc.Error.Kind])
				return
			}
			require.NoError(t, err)
			require.NotNil(t, tc.Received)
			assert.Equal(t, tc.Received.Marker == "error", marker == markerEnd)
			assert.Len(t, payload, tc.Received.SerializedLen)
			m := messageType(t, tc.Received.Type).New().Interface()
			require.NoError(t, proto.Unmarshal(payload, m))
			if marker == markerEnd {
				text, err := decodeRPCError(payload)
				require.NoError(t, err)
				assert.Empty(t, text)
			}
		})
	}
}

// TestStreamLiveFraming: the frames of live stream calls split and re-join exactly.
func TestStreamLiveFraming(t *testing.T) {
	for _, tc := range loadEnvelopeVectors(t).StreamLive {
		t.Run(tc.Name, func(t *testing.T) {
			for _, side := range []struct {
				all    []byte
				frames []vectors.HexBytes
			}{{tc.RequestBytes, tc.RequestFrames}, {tc.ReplyBytes, tc.ReplyFrames}} {
				r := bytes.NewReader(side.all)
				var joined []byte
				for _, f := range side.frames {
					marker, payload, _, err := readStreamFrame(r, DefaultMaxMessageSize, nil)
					require.NoError(t, err)
					assert.Equal(t, []byte(f), appendStreamFrame(nil, marker, payload))
					joined = append(joined, f...)
				}
				_, _, _, err := readStreamFrame(r, DefaultMaxMessageSize, nil)
				assert.True(t, errors.Is(err, io.EOF), "only whole frames: %v", err)
				assert.Equal(t, side.all, joined)
			}
			// The caller's request ends with END_OF_STREAM.
			assert.Equal(t, endOfStreamFrame(), []byte(tc.RequestFrames[len(tc.RequestFrames)-1]))
		})
	}
}

type dhtProtoFile struct {
	HandleNames []struct {
		Name          string  `json:"name"`
		ServicerClass string  `json:"servicer_class"`
		Method        string  `json:"method"`
		Namespace     *string `json:"namespace"`
		HandleName    string  `json:"handle_name"`
	} `json:"handle_names"`
	Messages []struct {
		Name       string           `json:"name"`
		Type       string           `json:"type"`
		Serialized vectors.HexBytes `json:"serialized_hex"`
	} `json:"messages"`
}

// TestHandleNameVectors: handle names are built exactly as hivemind builds them.
func TestHandleNameVectors(t *testing.T) {
	var f dhtProtoFile
	vectors.Load(t, "dht_proto.json", &f)
	require.NotEmpty(t, f.HandleNames)
	for _, tc := range f.HandleNames {
		t.Run(tc.Name, func(t *testing.T) {
			ns := Namespace{}
			if tc.Namespace != nil {
				ns = NamespaceOf(*tc.Namespace)
			}
			assert.Equal(t, tc.HandleName, HandleName(ns, tc.ServicerClass, tc.Method))
			assert.NoError(t, checkHandleName(tc.HandleName))
		})
	}
}

// TestDHTMessagesThroughEnvelope: every dht_proto.json message travels as callUnary data and comes back
// byte for byte, and decodes as its type.
func TestDHTMessagesThroughEnvelope(t *testing.T) {
	var f dhtProtoFile
	vectors.Load(t, "dht_proto.json", &f)
	require.NotEmpty(t, f.Messages)
	for _, tc := range f.Messages {
		t.Run(tc.Name, func(t *testing.T) {
			m := messageType(t, tc.Type).New().Interface()
			require.NoError(t, proto.Unmarshal(tc.Serialized, m))
			again, err := proto.Marshal(m)
			require.NoError(t, err)
			assert.Equal(t, []byte(tc.Serialized), nonNil(again))

			frame, err := encodeUnaryRequest(make([]byte, callIDLen), []byte("peer"), "DHTProtocol.rpc_x", tc.Serialized)
			require.NoError(t, err)
			body, _, err := readDelimited(bytes.NewReader(frame), DefaultMaxMessageSize, nil)
			require.NoError(t, err)
			req, err := decodeUnaryRequest(body)
			require.NoError(t, err)
			assert.Equal(t, []byte(tc.Serialized), req.data)

			reply, err := encodeUnaryReply(make([]byte, callIDLen), tc.Serialized, false, "")
			require.NoError(t, err)
			body, _, err = readDelimited(bytes.NewReader(reply), DefaultMaxMessageSize, nil)
			require.NoError(t, err)
			got, err := decodeUnaryReply(body, make([]byte, callIDLen))
			require.NoError(t, err)
			assert.Equal(t, []byte(tc.Serialized), got.response)
		})
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
