package p2p

import (
	"context"
	"encoding/binary"
	"iter"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile or broken input: each bad stream is reset (or closed) without a reply and the host keeps
// serving everyone else.

func registerEcho(t *testing.T, h *Host) {
	t.Helper()
	require.NoError(t, AddUnaryHandler(h, "E.rpc_echo", func(_ context.Context, _ PeerID, r num) (num, error) { return r, nil }))
	require.NoError(t, AddStreamHandler(h, "E.rpc_stream_echo", func(_ context.Context, _ PeerID, reqs iter.Seq2[num, error], send func(num) error) error {
		for r, err := range reqs {
			if err != nil {
				return err
			}
			if err := send(r); err != nil {
				return err
			}
		}
		return nil
	}))
}

func assertStillServing(t *testing.T, server, client *Host) {
	t.Helper()
	ctx := testContext(t)
	got, err := CallUnary[num](ctx, client, server.ID(), "E.rpc_echo", n(42))
	require.NoError(t, err)
	assert.Equal(t, int64(42), got.GetValue())
	assert.Equal(t, []int64{1, 2}, collect(t, CallStream[num](ctx, client, server.ID(), "E.rpc_stream_echo", nums(1, 2))))
}

func TestBadFramesResetOnlyTheirStream(t *testing.T) {
	uvarint := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	streamHeader := func(marker byte, length uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte{marker}, length)
	}
	for _, tc := range []struct {
		name      string
		handle    string
		bytes     []byte
		closeSend bool // end the write side after the bytes (a truncated frame)
	}{
		{"unary garbage", "E.rpc_echo", []byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}, false},
		{"unary oversized length", "E.rpc_echo", uvarint(DefaultMaxMessageSize + 1), false},
		{"unary length varint overflow", "E.rpc_echo", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, false},
		{"unary truncated frame", "E.rpc_echo", append(uvarint(100), make([]byte, 10)...), true},
		{"stream bad marker", "E.rpc_stream_echo", append(streamHeader(0x07, 2), 0x08, 0x01), false},
		{"stream oversized length", "E.rpc_stream_echo", streamHeader(markerMessage, 1<<40), false},
		{"stream truncated frame", "E.rpc_stream_echo", append(streamHeader(markerMessage, 100), make([]byte, 10)...), true},
		{"stream garbage payload", "E.rpc_stream_echo", append(streamHeader(markerMessage, 3), 0x12, 0x05, 0x00), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachNet(t, func(t *testing.T, kind string) {
				server, client := hostPair(t, kind, Config{})
				registerEcho(t, server)
				s := rawStream(t, client, server, tc.handle)
				_, err := s.Write(tc.bytes)
				require.NoError(t, err)
				if tc.closeSend {
					require.NoError(t, s.CloseWrite())
				}
				got, _ := readAllTimeout(t, s)
				assert.Empty(t, got, "no reply to a bad frame (a garbage payload included: hivemind's receive loop raises on it)")
				assertStillServing(t, server, client)
			})
		})
	}
}

// TestStalledPeerIsCutOff: a peer that sends half a frame and stalls is reset after StreamIdleTimeout,
// freeing the handler goroutine (deadlines need a real transport: TCP only).
func TestStalledPeerIsCutOff(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		handle string
		bytes  []byte
	}{
		{"unary half frame", "E.rpc_echo", []byte{0x20, 0x0a}},
		{"stream half header", "E.rpc_stream_echo", []byte{markerMessage, 0x00, 0x00}},
		{"stream waiting for the next frame", "E.rpc_stream_echo", appendStreamFrame(nil, markerMessage, nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := hostPair(t, netTCP, Config{StreamIdleTimeout: idle})
			registerEcho(t, server)
			s := rawStream(t, client, server, tc.handle)
			_, err := s.Write(tc.bytes)
			require.NoError(t, err)
			start := time.Now()
			_, err = readAllTimeout(t, s) // the stream stays open on our side: only the server can end it
			elapsed := time.Since(start)
			if tc.name == "stream waiting for the next frame" {
				require.Error(t, err, "reset after the echoed frame")
			} else {
				assert.Error(t, err)
			}
			assert.GreaterOrEqual(t, elapsed, idle/2)
			assert.Less(t, elapsed, testTimeout/2)
			assertStillServing(t, server, client)
		})
	}
}

// TestOversizedMessagesAreRefusedLocally: a caller never sends, and a handler never replies with, a
// message over the cap.
func TestOversizedMessagesAreRefusedLocally(t *testing.T) {
	const small = 1 << 10
	server, client := hostPair(t, netMock, Config{MaxMessageSize: small})
	registerEcho(t, server)
	require.NoError(t, server.SetUnaryBytesHandler("E.rpc_big", func(context.Context, PeerID, []byte) ([]byte, error) {
		return make([]byte, small+1), nil
	}))
	ctx := testContext(t)
	_, err := client.CallUnaryBytes(ctx, server.ID(), "E.rpc_echo", make([]byte, small+1))
	assert.ErrorIs(t, err, ErrFrameTooLarge)
	_, err = client.CallUnaryBytes(ctx, server.ID(), "E.rpc_big", nil)
	var remote *RemoteError
	require.ErrorAs(t, err, &remote)
	assert.Equal(t, responseTooLargeText, remote.Text)
	cs, err := client.OpenBytesStream(ctx, server.ID(), "E.rpc_stream_echo")
	require.NoError(t, err)
	defer cs.Close()
	assert.ErrorIs(t, cs.Send(make([]byte, small+1)), ErrFrameTooLarge)
	assertStillServing(t, server, client)
}

// TestPerPeerStreamLimit: one peer opening streams past its per-peer limit is refused while another
// peer is still served.
func TestPerPeerStreamLimit(t *testing.T) {
	const limit = 8
	server := newTCPHost(t, Config{Limits: Limits{MaxStreamsPerPeer: limit}})
	hog, other := newTCPHost(t, Config{}), newTCPHost(t, Config{})
	for _, c := range []*Host{hog, other} {
		_, err := c.Connect(testContext(t), server.VisibleMaddrs()[0].String())
		require.NoError(t, err)
	}
	registerEcho(t, server)
	release := make(chan struct{})
	started := make(chan struct{}, 4*limit)
	require.NoError(t, AddUnaryHandler(server, "E.rpc_hold", func(ctx context.Context, _ PeerID, r num) (num, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return r, nil
	}))

	ctx := testContext(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { close(release); wg.Wait() })
	held, refused := 0, 0
	for i := 0; i < 2*limit && refused == 0; i++ {
		errc := make(chan error, 1)
		wg.Go(func() {
			_, err := CallUnary[num](ctx, hog, server.ID(), "E.rpc_hold", n(int64(i)))
			errc <- err
		})
		select {
		case <-started:
			held++
		case err := <-errc:
			require.Error(t, err)
			refused++
		case <-time.After(testTimeout):
			t.Fatal("call neither started nor failed")
		}
	}
	assert.Equal(t, 1, refused, "the hog is refused once past its limit")
	assert.LessOrEqual(t, held, limit)
	assert.Greater(t, held, limit/2, "the limit is not much lower than configured")

	got, err := CallUnary[num](ctx, other, server.ID(), "E.rpc_echo", n(5))
	require.NoError(t, err, "another peer is still served")
	assert.Equal(t, int64(5), got.GetValue())
}

// TestHandlerContextEndsOnClose: Close cancels running handlers and waits for them.
func TestHandlerContextEndsOnClose(t *testing.T) {
	server, client := hostPair(t, netMock, Config{})
	started := make(chan struct{})
	done := make(chan error, 1)
	require.NoError(t, AddUnaryHandler(server, "E.rpc_forever", func(ctx context.Context, _ PeerID, r num) (num, error) {
		close(started)
		<-ctx.Done()
		done <- ctx.Err()
		return r, nil
	}))
	errc := make(chan error, 1)
	go func() {
		_, err := CallUnary[num](testContext(t), client, server.ID(), "E.rpc_forever", n(1))
		errc <- err
	}()
	<-started
	require.NoError(t, server.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	default:
		t.Fatal("Close returned before the handler did")
	}
	err := <-errc
	require.Error(t, err, "the caller gets no reply")
	assert.NotErrorIs(t, err, ErrRemoteHandler)
}
