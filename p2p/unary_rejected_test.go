package p2p

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRejectedUnaryRequestClosesCleanly: p2pd's handler for a unary protocol (persistentStreamHandler)
// returns without a reply when it cannot read the request frame (over its 4 MiB cap, or cut short) or
// the envelope is not a callUnary with a 16-byte callId; its deferred Close ends the stream cleanly and
// the caller reads EOF. Ours does the same (before, it reset the stream for a frame over the cap and for
// an envelope that does not decode).
func TestRejectedUnaryRequestClosesCleanly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"frame over the cap", appendFrameHeader(make([]byte, DefaultMaxMessageSize+1))},
		{"body that is not an envelope", appendFrameHeader([]byte{0xff, 0xff, 0xff})},
		{"callUnary without its required data", appendFrameHeader(append(append([]byte{0x0a, callIDLen}, make([]byte, callIDLen)...), 0x1a, 0x06, 0x0a, 0x00, 0x12, 0x02, 'T', '.'))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachNet(t, func(t *testing.T, kind string) {
				server, client := hostPair(t, kind, Config{})
				require.NoError(t, server.SetUnaryBytesHandler("T.rpc_x", func(context.Context, PeerID, []byte) ([]byte, error) {
					return nil, errors.New("a rejected request reached the handler")
				}))
				s := rawStream(t, client, server, "T.rpc_x")
				go func() { _, _ = s.Write(tc.frame) }() // a refused frame's writes may block or fail: the stream is closed
				got, err := readAllTimeout(t, s)
				require.NoError(t, err, "the stream ends cleanly (EOF), not with a reset")
				assert.Empty(t, got, "no reply")
			})
		})
	}
}
