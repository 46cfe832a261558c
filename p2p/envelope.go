package p2p

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/proto/p2pdpb"
)

// callIDLen is the length of a unary call ID (a UUID; p2pd checks only the length).
const callIDLen = 16

// unaryRequest is a decoded unary request envelope: PersistentConnectionRequest{callId, callUnary}.
type unaryRequest struct {
	callID []byte
	// peer is CallUnaryRequest.peer as sent; a callee must ignore it and use the connection's peer.
	peer  []byte
	proto string
	data  []byte
}

// unaryReply is a decoded unary reply envelope: PersistentConnectionRequest{callId, unaryResponse}.
type unaryReply struct {
	callID []byte
	// isError selects the error arm: errorText is set, response is not.
	isError   bool
	response  []byte
	errorText string
}

// marshalFrame encodes m as one delimited frame, uvarint(size) || m. Required proto2 fields are checked.
func marshalFrame(m proto.Message) ([]byte, error) {
	size := proto.Size(m)
	buf := make([]byte, 0, size+maxUvarintLen)
	buf = binary.AppendUvarint(buf, uint64(size))
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal: %w", ErrInvalidEnvelope, err)
	}
	return buf, nil
}

// encodeUnaryRequest builds the request frame a caller writes: every required field is emitted, data
// even when empty (1a 00), as p2pd demands.
func encodeUnaryRequest(callID, calleePeer []byte, name string, data []byte) ([]byte, error) {
	if data == nil {
		data = []byte{}
	}
	if calleePeer == nil {
		calleePeer = []byte{}
	}
	return marshalFrame(&p2pdpb.PersistentConnectionRequest{
		CallId: callID,
		Message: &p2pdpb.PersistentConnectionRequest_CallUnary{CallUnary: &p2pdpb.CallUnaryRequest{
			Peer:  calleePeer,
			Proto: proto.String(name),
			Data:  data,
		}},
	})
}

// encodeUnaryReply builds the reply frame a handler writes: the request's callId echoed and either the
// response arm or, when isError, the error arm carrying errorText.
func encodeUnaryReply(callID []byte, response []byte, isError bool, errorText string) ([]byte, error) {
	result := &p2pdpb.CallUnaryResponse{}
	if isError {
		result.Result = &p2pdpb.CallUnaryResponse_Error{Error: []byte(errorText)}
	} else {
		if response == nil {
			response = []byte{}
		}
		result.Result = &p2pdpb.CallUnaryResponse_Response{Response: response}
	}
	return marshalFrame(&p2pdpb.PersistentConnectionRequest{
		CallId:  callID,
		Message: &p2pdpb.PersistentConnectionRequest_UnaryResponse{UnaryResponse: result},
	})
}

// decodeEnvelope parses a frame body strictly: proto2 required fields must be present (ErrDecode), at
// every depth, as gogo's Unmarshal in p2pd demands. proto.Unmarshal alone misses a required field
// absent from a message inside a oneof, hence the explicit CheckInitialized.
func decodeEnvelope(body []byte) (*p2pdpb.PersistentConnectionRequest, error) {
	var env p2pdpb.PersistentConnectionRequest
	if err := proto.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: PersistentConnectionRequest: %w", ErrDecode, err)
	}
	if err := proto.CheckInitialized(&env); err != nil {
		return nil, fmt.Errorf("%w: PersistentConnectionRequest: %w", ErrDecode, err)
	}
	return &env, nil
}

// decodeUnaryRequest parses a request frame body the way p2pd's persistentStreamHandler accepts it: a
// valid envelope (ErrDecode otherwise) with the callUnary arm and a 16-byte callId (ErrInvalidEnvelope
// otherwise).
func decodeUnaryRequest(body []byte) (unaryRequest, error) {
	env, err := decodeEnvelope(body)
	if err != nil {
		return unaryRequest{}, err
	}
	if len(env.GetCallId()) != callIDLen {
		return unaryRequest{}, fmt.Errorf("%w: callId is %d bytes, want %d", ErrInvalidEnvelope, len(env.GetCallId()), callIDLen)
	}
	call := env.GetCallUnary()
	if call == nil {
		return unaryRequest{}, fmt.Errorf("%w: %s arm instead of callUnary", ErrInvalidEnvelope, armName(env))
	}
	return unaryRequest{callID: env.GetCallId(), peer: call.GetPeer(), proto: call.GetProto(), data: call.GetData()}, nil
}

// decodeUnaryReply parses a reply frame body: a valid envelope with the unaryResponse arm, one result arm
// set, and the callId of the request (wantCallID; nil skips the check).
func decodeUnaryReply(body, wantCallID []byte) (unaryReply, error) {
	env, err := decodeEnvelope(body)
	if err != nil {
		return unaryReply{}, err
	}
	if wantCallID != nil && string(env.GetCallId()) != string(wantCallID) {
		return unaryReply{}, fmt.Errorf("%w: reply callId %x, request callId %x", ErrInvalidEnvelope, env.GetCallId(), wantCallID)
	}
	resp := env.GetUnaryResponse()
	if resp == nil {
		return unaryReply{}, fmt.Errorf("%w: %s arm instead of unaryResponse", ErrInvalidEnvelope, armName(env))
	}
	reply := unaryReply{callID: env.GetCallId()}
	switch r := resp.GetResult().(type) {
	case *p2pdpb.CallUnaryResponse_Response:
		reply.response = r.Response
	case *p2pdpb.CallUnaryResponse_Error:
		reply.isError, reply.errorText = true, string(r.Error)
	default:
		return unaryReply{}, fmt.Errorf("%w: unaryResponse with neither response nor error", ErrInvalidEnvelope)
	}
	return reply, nil
}

// armName names the oneof arm set in env, for error messages.
func armName(env *p2pdpb.PersistentConnectionRequest) string {
	switch env.GetMessage().(type) {
	case *p2pdpb.PersistentConnectionRequest_AddUnaryHandler:
		return "addUnaryHandler"
	case *p2pdpb.PersistentConnectionRequest_CallUnary:
		return "callUnary"
	case *p2pdpb.PersistentConnectionRequest_UnaryResponse:
		return "unaryResponse"
	case *p2pdpb.PersistentConnectionRequest_Cancel:
		return "cancel"
	case *p2pdpb.PersistentConnectionRequest_RemoveUnaryHandler:
		return "removeUnaryHandler"
	default:
		return "no"
	}
}

// encodeRPCError is the payload of a handler's error frame: RPCError{message}.
// It is written with protowire (field 1, bytes) and is byte-identical to proto.Marshal's output.
func encodeRPCError(message string) []byte {
	b := protowire.AppendTag(make([]byte, 0, len(message)+6), 1, protowire.BytesType)
	return protowire.AppendString(b, message)
}

// decodeRPCError parses an error frame's payload (ErrDecode when it is not an RPCError).
func decodeRPCError(payload []byte) (string, error) {
	var e p2pdpb.RPCError
	if err := proto.Unmarshal(payload, &e); err != nil {
		return "", fmt.Errorf("%w: RPCError: %w", ErrDecode, err)
	}
	return e.GetMessage(), nil
}
