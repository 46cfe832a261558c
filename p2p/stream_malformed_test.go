package p2p

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMalformedStreamRequestClosesCleanly: hivemind's stream handler reads each request frame with
// receive_protobuf, which raises on a marker other than 00/01 (TypeError) and on an end frame whose
// payload does not parse as an RPCError (DecodeError). The handler then cancels its processing task and
// closes the stream: the caller reads a clean end of stream and no further frame, not even an error
// frame. An end frame whose payload is an RPCError ends the input like END_OF_STREAM, whatever its
// message. Ours does the same (before, it reset the stream on an unknown marker and ignored the end
// frame's payload).
func TestMalformedStreamRequestClosesCleanly(t *testing.T) {
	message := appendStreamFrame(nil, markerMessage, []byte{0x18, 0x01})
	for _, tc := range []struct {
		name    string
		request []byte
		// inputErr is how the handler's input ends (nil: cleanly, and it answers).
		inputErr error
	}{
		{"unknown marker first", appendStreamFrame(nil, 0x07, []byte{0x18, 0x01}), ErrBadFrameMarker},
		{"unknown marker after a request", append(message, appendStreamFrame(nil, 0x05, nil)...), ErrBadFrameMarker},
		{"end frame whose payload is not an RPCError", append(message, appendStreamFrame(nil, markerEnd, []byte{0xff})...), ErrDecode},
		{"end frame holding an RPCError", append(message, appendStreamFrame(nil, markerEnd, encodeRPCError("boom"))...), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachNet(t, func(t *testing.T, kind string) {
				server, client := hostPair(t, kind, Config{})
				ended := make(chan error, 1)
				answer := []byte{0x08, 0x2a}
				require.NoError(t, server.SetStreamBytesHandler("T.rpc_sum", func(_ context.Context, _ PeerID, in *Requests, send func([]byte) error) error {
					for {
						_, ok, err := in.Next()
						if !ok {
							ended <- err
							if err != nil {
								return errors.New("the input broke") // must not reach the caller
							}
							return send(answer) // answered after the end of the input, as a stream-to-unary handler
						}
					}
				}))
				s := rawStream(t, client, server, "T.rpc_sum")
				_, err := s.Write(tc.request) // no half-close, as hivemind's caller
				require.NoError(t, err)
				got, err := readAllTimeout(t, s)
				require.NoError(t, err, "the stream ends cleanly (EOF), not with a reset")
				if tc.inputErr != nil {
					assert.ErrorIs(t, <-ended, tc.inputErr)
					assert.Empty(t, got, "no frame after a malformed request")
					return
				}
				assert.NoError(t, <-ended)
				assert.Equal(t, appendStreamFrame(nil, markerMessage, answer), got)
			})
		})
	}
}

// TestUndecodableStreamRequestClosesCleanly: a well-framed request whose payload is not the handler's
// request type ends the call as hivemind ends it — its receive loop's receive_protobuf raises a
// DecodeError before the handler sees the request, the processing task is cancelled and the stream
// closed — so no error frame reaches the caller, whatever the typed handler returns.
func TestUndecodableStreamRequestClosesCleanly(t *testing.T) {
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		registerEcho(t, server)
		s := rawStream(t, client, server, "E.rpc_stream_echo")
		garbage := []byte{0x12, 0x05, 0x00} // a field that claims 5 bytes and has 1
		_, err := s.Write(append(appendStreamFrame(nil, markerMessage, garbage), endOfStreamFrame()...))
		require.NoError(t, err)
		got, err := readAllTimeout(t, s)
		require.NoError(t, err, "the stream ends cleanly (EOF), not with a reset")
		assert.Empty(t, got, "no frame after an undecodable request")
		assertStillServing(t, server, client)
	})
}
