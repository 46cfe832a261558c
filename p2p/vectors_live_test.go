package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/test/vectors"
)

// The golden exchanges replayed over live streams: recorded bytes are written verbatim on one side and
// our implementation answers on the other, so what goes over the wire is compared byte for byte.

// withCallID returns a copy of a recorded frame whose callId (the first field of the body: 0a 10 + 16
// bytes, right after the length prefix) is replaced by id.
func withCallID(t *testing.T, frame []byte, prefixLen int, id []byte) []byte {
	t.Helper()
	out := bytes.Clone(frame)
	require.Equal(t, []byte{0x0a, callIDLen}, out[prefixLen:prefixLen+2])
	copy(out[prefixLen+2:], id)
	return out
}

// TestUnaryInboundLive: hivemind's recorded request frames are written verbatim to our unary handlers;
// the replies on the wire equal the Go host's recorded replies byte for byte.
func TestUnaryInboundLive(t *testing.T) {
	f := loadEnvelopeVectors(t)
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		type answer struct {
			reply unaryReply
		}
		answers := map[string]map[string]answer{} // protocol -> request data -> answer
		for _, tc := range f.UnaryInbound {
			if tc.RequestFrame == nil {
				continue
			}
			if answers[tc.Protocol] == nil {
				answers[tc.Protocol] = map[string]answer{}
			}
			reply, err := decodeUnaryReply(decodeFrame(t, tc.ReplyFrame, *tc.Reply), nil)
			require.NoError(t, err)
			answers[tc.Protocol][string(tc.Request.CallUnary.Data)] = answer{reply}
		}
		for name, byData := range answers {
			require.NoError(t, server.SetUnaryBytesHandler(name, func(_ context.Context, from PeerID, data []byte) ([]byte, error) {
				if from != client.ID() { // the envelope's peer field names another host: never trust it
					return nil, errors.New("caller taken from the envelope")
				}
				a, ok := byData[string(data)]
				if !ok {
					return nil, errors.New("unexpected request data")
				}
				if a.reply.isError {
					return nil, errors.New(a.reply.errorText)
				}
				return a.reply.response, nil
			}))
		}
		for _, tc := range f.UnaryInbound {
			if tc.RequestFrame == nil {
				continue
			}
			t.Run(tc.Name, func(t *testing.T) {
				s := rawStream(t, client, server, tc.Protocol)
				_, err := s.Write(tc.RequestFrame) // no half-close, as p2pd
				require.NoError(t, err)
				got, err := readAllTimeout(t, s)
				require.NoError(t, err)
				assert.Equal(t, []byte(tc.ReplyFrame), got)
			})
		}
	})
}

// TestUnaryOutboundLive: our caller against a stand-in for hivemind's p2pd that checks each request
// frame against the recorded one and answers with the recorded reply frame (callId echoed).
func TestUnaryOutboundLive(t *testing.T) {
	f := loadEnvelopeVectors(t)
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		ctx := testContext(t)
		for _, tc := range f.UnaryOutbound {
			if tc.Outcome != "reply" {
				continue
			}
			t.Run(tc.Name, func(t *testing.T) {
				name := tc.Protocol + "#" + tc.Name // one stand-in per case
				checked := make(chan error, 1)
				server.lh.SetStreamHandler(protocol.ID(name), func(s network.Stream) {
					defer s.Close()
					body, _, err := readDelimited(s, DefaultMaxMessageSize, nil)
					if err != nil {
						checked <- err
						return
					}
					req, err := decodeUnaryRequest(body)
					if err != nil {
						checked <- err
						return
					}
					// Our frame is the recorded one with our callId, our callee ID and our handle name.
					want, err := encodeUnaryRequest(req.callID, []byte(server.ID()), name, tc.Request.CallUnary.Data)
					if err == nil && !bytes.Equal(appendFrameHeader(body), want) {
						err = errors.New("request frame differs from the recorded one")
					}
					checked <- err
					_, _ = s.Write(withCallID(t, tc.ReplyFrame, len(tc.Reply.LengthPrefix), req.callID))
				})
				t.Cleanup(func() { server.lh.RemoveStreamHandler(protocol.ID(name)) })

				resp, err := client.CallUnaryBytes(ctx, server.ID(), name, tc.Request.CallUnary.Data)
				require.NoError(t, <-checked)
				if tc.Reply.UnaryResponse.ResultWhich == "error" {
					var remote *RemoteError
					require.ErrorAs(t, err, &remote)
					assert.Equal(t, *tc.Reply.UnaryResponse.ErrorText, remote.Text)
					return
				}
				require.NoError(t, err)
				assert.Equal(t, []byte(tc.Reply.UnaryResponse.Response), nonNil(resp))
			})
		}
		t.Run("stream_open_failed", func(t *testing.T) {
			_, err := client.CallUnaryBytes(ctx, server.ID(), "DHTProtocol.rpc_nonexistent", nil)
			assert.ErrorIs(t, err, ErrProtocolNotSupported)
		})
	})
}

// appendFrameHeader re-frames a body (uvarint length prefix), for comparing whole frames.
func appendFrameHeader(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// TestUnaryRejectedLive: the requests hivemind's p2pd dropped without a reply (missing data, an 8-byte
// callId, the cancel arm, a frame over 4 MiB) get no reply from our handler either, and never reach it.
func TestUnaryRejectedLive(t *testing.T) {
	f := loadEnvelopeVectors(t)
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		var mu sync.Mutex
		calls := 0
		for _, name := range []string{"DHTProtocol.rpc_ping", "DHTProtocol.rpc_store", "DHTProtocol.rpc_find"} {
			require.NoError(t, server.SetUnaryBytesHandler(name, func(context.Context, PeerID, []byte) ([]byte, error) {
				mu.Lock()
				calls++
				mu.Unlock()
				return []byte{}, nil
			}))
		}
		for _, tc := range f.UnaryOutbound {
			if tc.Outcome != "no_reply" {
				continue
			}
			t.Run(tc.Name, func(t *testing.T) {
				frame := []byte(tc.RequestFrame)
				if frame == nil { // rebuild the oversize frame
					var err error
					frame, err = encodeUnaryRequest(tc.Request.CallID, tc.Request.CallUnary.Peer,
						tc.Request.CallUnary.Proto, make([]byte, tc.Request.CallUnary.DataLen))
					require.NoError(t, err)
				}
				s := rawStream(t, client, server, tc.Protocol)
				go func() { _, _ = s.Write(frame) }() // may fail once the handler resets the stream
				got, _ := readAllTimeout(t, s)
				assert.Empty(t, got, "no reply")
			})
		}
		mu.Lock()
		defer mu.Unlock()
		assert.Zero(t, calls, "rejected requests reached the handler")
	})
}

// TestStreamLiveVectors replays the recorded stream calls: hivemind calling our stream handler (its
// bytes written verbatim, our reply bytes compared), and our caller against a stand-in for hivemind's
// handler (our request bytes compared, its recorded reply parsed).
func TestStreamLiveVectors(t *testing.T) {
	f := loadEnvelopeVectors(t)
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		ctx := testContext(t)
		for _, tc := range f.StreamLive {
			t.Run(tc.Name, func(t *testing.T) {
				replies := payloads(t, tc.ReplyFrames)
				requests := payloads(t, tc.RequestFrames[:len(tc.RequestFrames)-1])
				name := tc.Protocol + "#" + kind
				if tc.Name == "py_iterate_stream_handler" { // hivemind -> our handler
					received := make(chan [][]byte, 1)
					require.NoError(t, server.SetStreamBytesHandler(name, func(_ context.Context, _ PeerID, in *Requests, send func([]byte) error) error {
						var got [][]byte
						defer func() { received <- got }()
						for {
							p, ok, err := in.Next()
							if !ok {
								if err != nil {
									return err
								}
								break
							}
							got = append(got, p)
						}
						for _, r := range replies {
							if err := send(r); err != nil {
								return err
							}
						}
						return nil
					}))
					s := rawStream(t, client, server, name)
					_, err := s.Write(tc.RequestBytes)
					require.NoError(t, err)
					out, err := readAllTimeout(t, s)
					require.NoError(t, err)
					assert.Equal(t, []byte(tc.ReplyBytes), out)
					assert.Equal(t, requests, <-received)
					return
				}
				// our caller -> hivemind's handler
				seen := make(chan []byte, 1)
				server.lh.SetStreamHandler(protocol.ID(name), func(s network.Stream) {
					defer s.Close()
					var buf bytes.Buffer
					for {
						marker, p, _, err := readStreamFrame(s, DefaultMaxMessageSize, nil)
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
				})
				cs, err := client.OpenBytesStream(ctx, server.ID(), name)
				require.NoError(t, err)
				defer cs.Close()
				for _, r := range requests {
					require.NoError(t, cs.Send(r))
				}
				require.NoError(t, cs.CloseSend())
				assert.Equal(t, []byte(tc.RequestBytes), <-seen)
				var got [][]byte
				for {
					p, err := cs.Recv()
					if errors.Is(err, io.EOF) {
						break
					}
					var remote *RemoteError
					if errors.As(err, &remote) {
						last, _, _, derr := readStreamFrame(bytes.NewReader(tc.ReplyFrames[len(tc.ReplyFrames)-1]), DefaultMaxMessageSize, nil)
						require.NoError(t, derr)
						require.Equal(t, markerEnd, last)
						assert.Equal(t, "boom ✗ (raised by a hivemind stream handler)", remote.Text)
						replies = replies[:len(replies)-1]
						break
					}
					require.NoError(t, err)
					got = append(got, p)
				}
				assert.Equal(t, replies, got)
			})
		}
	})
}

// payloads returns the payloads of whole stream frames.
func payloads(t *testing.T, frames []vectors.HexBytes) [][]byte {
	t.Helper()
	out := [][]byte{}
	for _, f := range frames {
		_, p, _, err := readStreamFrame(bytes.NewReader(f), DefaultMaxMessageSize, nil)
		require.NoError(t, err)
		out = append(out, p)
	}
	return out
}
