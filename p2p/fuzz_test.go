package p2p

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/hivemind-go/hivemind/test/vectors"
)

// Fuzz targets for every decoder that reads bytes from a peer or a file, seeded from the golden vectors.
// The seeds run in every `go test`; scripts/fuzz explores further.

const fuzzMaxMessage = 1 << 16 // small cap so the fuzzer explores lengths around it

// FuzzUnaryEnvelope: a unary frame from a peer (request or reply) never panics the decoder, lengths over
// the cap are refused before allocation, and whatever decodes re-encodes to an equivalent envelope.
func FuzzUnaryEnvelope(f *testing.F) {
	for _, seed := range vectors.ByteStrings(f, envelopeFile) {
		f.Add(seed)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, frame []byte) {
		body, res, err := readDelimited(bytes.NewReader(frame), fuzzMaxMessage, nil)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncatedFrame) && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		res.release()
		if len(body) > fuzzMaxMessage {
			t.Fatalf("body of %d bytes over the cap", len(body))
		}
		if req, err := decodeUnaryRequest(body); err == nil {
			again, err := encodeUnaryRequest(req.callID, req.peer, req.proto, req.data)
			if err != nil {
				t.Fatalf("re-encode request: %v", err)
			}
			b2, _, err := readDelimited(bytes.NewReader(again), len(again), nil)
			if err != nil {
				t.Fatalf("re-read request: %v", err)
			}
			req2, err := decodeUnaryRequest(b2)
			if err != nil || !bytes.Equal(req.callID, req2.callID) || !bytes.Equal(req.peer, req2.peer) ||
				req.proto != req2.proto || !bytes.Equal(req.data, req2.data) {
				t.Fatalf("request round trip differs: %v", err)
			}
		}
		if reply, err := decodeUnaryReply(body, nil); err == nil {
			again, err := encodeUnaryReply(reply.callID, reply.response, reply.isError, reply.errorText)
			if err != nil {
				t.Fatalf("re-encode reply: %v", err)
			}
			b2, _, err := readDelimited(bytes.NewReader(again), len(again), nil)
			if err != nil {
				t.Fatalf("re-read reply: %v", err)
			}
			reply2, err := decodeUnaryReply(b2, reply.callID)
			if err != nil || reply2.isError != reply.isError || reply2.errorText != reply.errorText ||
				!bytes.Equal(reply2.response, reply.response) {
				t.Fatalf("reply round trip differs: %v", err)
			}
		}
	})
}

// FuzzStreamFrames: a stream of hivemind frames from a peer never panics the reader; every frame read
// re-encodes to exactly the bytes it was read from; errors are of the documented kinds.
func FuzzStreamFrames(f *testing.F) {
	for _, seed := range vectors.ByteStrings(f, envelopeFile) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		consumed := 0
		for {
			marker, payload, res, err := readStreamFrame(r, fuzzMaxMessage, nil)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrTruncatedFrame) &&
					!errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrBadFrameMarker) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				if errors.Is(err, io.EOF) && consumed != len(data) {
					t.Fatalf("clean EOF after %d of %d bytes", consumed, len(data))
				}
				return
			}
			res.release()
			frame := appendStreamFrame(nil, marker, payload)
			if !bytes.Equal(frame, data[consumed:consumed+len(frame)]) {
				t.Fatalf("frame at %d does not re-encode to its bytes", consumed)
			}
			consumed += len(frame)
			if marker == markerEnd {
				_, _ = decodeRPCError(payload) // must not panic
			}
		}
	})
}

// FuzzParseIdentity: an identity file's contents never panic the parser; a key that parses re-encodes
// and parses back to the same key.
func FuzzParseIdentity(f *testing.F) {
	for _, seed := range vectors.ByteStrings(f, identityFile) {
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseIdentity(data)
		if err != nil {
			if !errors.Is(err, ErrIdentity) {
				t.Fatalf("error does not wrap ErrIdentity: %v", err)
			}
			return
		}
		again, err := MarshalIdentity(key)
		if err != nil {
			t.Fatalf("marshal a parsed key: %v", err)
		}
		key2, err := crypto.UnmarshalPrivateKey(again)
		if err != nil || !key.Equals(key2) {
			t.Fatalf("key round trip differs: %v", err)
		}
	})
}
