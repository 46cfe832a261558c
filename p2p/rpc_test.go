package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The servicer tests of hivemind's test_p2p_servicer.py and test_p2p_daemon.py (spec §12.7), on two
// real loopback TCP hosts and on mocknet.

type num = *wrapperspb.Int64Value

func n(v int64) num { return wrapperspb.Int64(v) }

func nums(vs ...int64) iter.Seq[num] {
	return func(yield func(num) bool) {
		for _, v := range vs {
			if !yield(n(v)) {
				return
			}
		}
	}
}

func upTo(k int64) []int64 {
	out := make([]int64, k)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func collect(t *testing.T, seq iter.Seq2[num, error]) []int64 {
	t.Helper()
	var out []int64
	for m, err := range seq {
		require.NoError(t, err)
		out = append(out, m.GetValue())
	}
	return out
}

const testClass = "ExampleServicer"

func TestServicerCalls(t *testing.T) {
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		sv := Servicer{Host: server, Namespace: NamespaceOf("ns"), Class: testClass}
		stub := sv.Stub(server.ID())
		require.Equal(t, "ns::ExampleServicer.rpc_square", sv.Name("rpc_square"))

		require.NoError(t, AddUnaryHandler(server, sv.Name("rpc_square"), func(_ context.Context, from PeerID, req num) (num, error) {
			if from != client.ID() {
				return nil, fmt.Errorf("caller %s, want %s", from, client.ID())
			}
			return n(req.GetValue() * req.GetValue()), nil
		}))
		require.NoError(t, AddStreamToUnaryHandler(server, sv.Name("rpc_sum"), func(_ context.Context, _ PeerID, reqs iter.Seq2[num, error]) (num, error) {
			var sum int64
			for r, err := range reqs {
				if err != nil {
					return nil, err
				}
				sum += r.GetValue()
			}
			return n(sum), nil
		}))
		require.NoError(t, AddUnaryToStreamHandler(server, sv.Name("rpc_count"), func(_ context.Context, _ PeerID, req num, send func(num) error) error {
			for i := range req.GetValue() {
				if err := send(n(i)); err != nil {
					return err
				}
			}
			return nil
		}))
		require.NoError(t, AddStreamHandler(server, sv.Name("rpc_powers"), func(_ context.Context, _ PeerID, reqs iter.Seq2[num, error], send func(num) error) error {
			for r, err := range reqs {
				if err != nil {
					return err
				}
				x := r.GetValue()
				if err := errors.Join(send(n(x*x)), send(n(x*x*x))); err != nil {
					return err
				}
			}
			return nil
		}))

		ctx := testContext(t)
		t.Run("unary 10 -> 100", func(t *testing.T) {
			got, err := CallUnary[num](ctx, client, stub.Peer, stub.Name("rpc_square"), n(10))
			require.NoError(t, err)
			assert.Equal(t, int64(100), got.GetValue())
		})
		t.Run("stream -> unary sum of 0..9", func(t *testing.T) {
			got, err := CallStreamToUnary[num](ctx, client, stub.Peer, stub.Name("rpc_sum"), nums(upTo(10)...))
			require.NoError(t, err)
			assert.Equal(t, int64(45), got.GetValue())
		})
		t.Run("unary -> stream 0..9", func(t *testing.T) {
			got := collect(t, CallUnaryToStream[num](ctx, client, stub.Peer, stub.Name("rpc_count"), n(10)))
			assert.Equal(t, upTo(10), got)
		})
		t.Run("stream -> stream squares and cubes interleaved", func(t *testing.T) {
			got := collect(t, CallStream[num](ctx, client, stub.Peer, stub.Name("rpc_powers"), nums(upTo(10)...)))
			var want []int64
			for x := range int64(10) {
				want = append(want, x*x, x*x*x)
			}
			assert.Equal(t, want, got)
		})
		t.Run("stream -> stream with live interleaving", func(t *testing.T) {
			cs, err := OpenStream[num, num](ctx, client, stub.Peer, stub.Name("rpc_powers"))
			require.NoError(t, err)
			defer cs.Close()
			for x := range int64(5) { // each response arrives before the next request is sent
				require.NoError(t, cs.Send(n(x)))
				sq, err := cs.Recv()
				require.NoError(t, err)
				cube, err := cs.Recv()
				require.NoError(t, err)
				assert.Equal(t, []int64{x * x, x * x * x}, []int64{sq.GetValue(), cube.GetValue()})
			}
			require.NoError(t, cs.CloseSend())
			_, err = cs.Recv()
			assert.ErrorIs(t, err, io.EOF)
		})
		t.Run("unary -> stream rejects two requests", func(t *testing.T) {
			_, err := CallStreamToUnary[num](ctx, client, stub.Peer, stub.Name("rpc_count"), nums(1, 2))
			var remote *RemoteError
			require.ErrorAs(t, err, &remote)
			assert.Contains(t, remote.Text, "exactly one")
		})
		t.Run("bytes API", func(t *testing.T) {
			data, err := marshal(n(7))
			require.NoError(t, err)
			out, err := client.CallUnaryBytes(ctx, server.ID(), sv.Name("rpc_square"), data)
			require.NoError(t, err)
			got, err := unmarshal[num](out)
			require.NoError(t, err)
			assert.Equal(t, int64(49), got.GetValue())
		})
	})
}

func TestHandlerErrors(t *testing.T) {
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		ctx := testContext(t)
		require.NoError(t, AddUnaryHandler(server, "S.rpc_fail", func(_ context.Context, _ PeerID, req num) (num, error) {
			if req.GetValue() < 0 {
				panic("negative input")
			}
			if req.GetValue() == 0 {
				return nil, errors.New("ValueError('boom')")
			}
			return req, nil
		}))
		require.NoError(t, AddStreamHandler(server, "S.rpc_stream_fail", func(_ context.Context, _ PeerID, reqs iter.Seq2[num, error], send func(num) error) error {
			for r, err := range reqs {
				if err != nil {
					return err
				}
				if r.GetValue() == 0 {
					return errors.New("boom ✗ (raised by a stream handler)")
				}
				if err := send(r); err != nil {
					return err
				}
			}
			return nil
		}))

		for _, tc := range []struct {
			name     string
			call     func() error
			wantText string
		}{
			{"unary error text", func() error {
				_, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_fail", n(0))
				return err
			}, "ValueError('boom')"},
			{"unary panic", func() error {
				_, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_fail", n(-1))
				return err
			}, "handler panicked: negative input"},
			{"stream error after a response", func() error {
				var got []int64
				for m, err := range CallStream[num](ctx, client, server.ID(), "S.rpc_stream_fail", nums(3, 0, 5)) {
					if err != nil {
						assert.Equal(t, []int64{3}, got)
						return err
					}
					got = append(got, m.GetValue())
				}
				return nil
			}, "boom ✗ (raised by a stream handler)"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := tc.call()
				require.ErrorIs(t, err, ErrRemoteHandler)
				var remote *RemoteError
				require.ErrorAs(t, err, &remote)
				assert.Equal(t, tc.wantText, remote.Text)
				// The error closed that call only: the server keeps serving.
				got, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_fail", n(4))
				require.NoError(t, err)
				assert.Equal(t, int64(4), got.GetValue())
			})
		}

		t.Run("protocol not supported", func(t *testing.T) {
			_, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_not_registered", n(1))
			assert.ErrorIs(t, err, ErrProtocolNotSupported)
		})
		t.Run("duplicate registration", func(t *testing.T) {
			err := AddUnaryHandler(server, "S.rpc_fail", func(context.Context, PeerID, num) (num, error) { return nil, nil })
			assert.ErrorIs(t, err, ErrHandlerExists)
		})
		t.Run("removed handler", func(t *testing.T) {
			require.NoError(t, AddUnaryHandler(server, "S.rpc_temp", func(_ context.Context, _ PeerID, r num) (num, error) { return r, nil }))
			_, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_temp", n(1))
			require.NoError(t, err)
			server.RemoveHandler("S.rpc_temp")
			// Until identify push tells the client, it negotiates lazily and the server resets the
			// stream with a "negotiation failed" code; mocknet cannot carry that code.
			_, err = CallUnary[num](ctx, client, server.ID(), "S.rpc_temp", n(1))
			if kind == netMock {
				assert.True(t, errors.Is(err, ErrProtocolNotSupported) || errors.Is(err, ErrNoReply), "%v", err)
			} else {
				assert.ErrorIs(t, err, ErrProtocolNotSupported)
			}
			require.Eventually(t, func() bool {
				_, err = CallUnary[num](ctx, client, server.ID(), "S.rpc_temp", n(1))
				return errors.Is(err, ErrProtocolNotSupported)
			}, testTimeout, 20*time.Millisecond, "after identify push: %v", err)
			// The name is free again.
			require.NoError(t, AddUnaryHandler(server, "S.rpc_temp", func(_ context.Context, _ PeerID, r num) (num, error) { return r, nil }))
		})
	})
}

// cancelBound is how fast a caller's cancellation must reach the remote handler (hivemind: 0.25 s; we
// allow more for slow CI machines).
const cancelBound = 5 * time.Second

func TestCancellationReachesHandler(t *testing.T) {
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		started := make(chan struct{}, 1)
		cancelled := make(chan error, 1)
		block := func(ctx context.Context) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				cancelled <- context.Cause(ctx)
			case <-time.After(testTimeout):
				cancelled <- errors.New("handler was never cancelled")
			}
		}
		require.NoError(t, AddUnaryHandler(server, "S.rpc_block", func(ctx context.Context, _ PeerID, r num) (num, error) {
			block(ctx)
			return r, nil
		}))
		require.NoError(t, AddUnaryToStreamHandler(server, "S.rpc_block_stream", func(ctx context.Context, _ PeerID, r num, send func(num) error) error {
			if err := send(r); err != nil {
				return err
			}
			block(ctx)
			return nil
		}))
		awaitCancel := func(t *testing.T) {
			t.Helper()
			select {
			case cause := <-cancelled:
				assert.ErrorContains(t, cause, "caller went away")
			case <-time.After(cancelBound):
				t.Fatal("the remote handler's context was not cancelled")
			}
		}

		t.Run("unary caller cancels", func(t *testing.T) {
			ctx, cancel := context.WithCancel(testContext(t))
			errc := make(chan error, 1)
			go func() {
				_, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_block", n(1))
				errc <- err
			}()
			<-started
			cancel()
			assert.ErrorIs(t, <-errc, context.Canceled)
			awaitCancel(t)
		})
		t.Run("unary caller deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
			defer cancel()
			_, err := CallUnary[num](ctx, client, server.ID(), "S.rpc_block", n(1))
			<-started
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			awaitCancel(t)
		})
		t.Run("stream caller cancels its context", func(t *testing.T) {
			ctx, cancel := context.WithCancel(testContext(t))
			cs, err := OpenStream[num, num](ctx, client, server.ID(), "S.rpc_block_stream")
			require.NoError(t, err)
			defer cs.Close()
			require.NoError(t, cs.Send(n(2)))
			require.NoError(t, cs.CloseSend())
			first, err := cs.Recv()
			require.NoError(t, err)
			assert.Equal(t, int64(2), first.GetValue())
			<-started
			cancel()
			_, err = cs.Recv()
			assert.ErrorIs(t, err, context.Canceled)
			awaitCancel(t)
		})
		t.Run("unary -> stream caller stops iterating", func(t *testing.T) {
			for m, err := range CallUnaryToStream[num](testContext(t), client, server.ID(), "S.rpc_block_stream", n(5)) {
				require.NoError(t, err)
				assert.Equal(t, int64(5), m.GetValue())
				<-started
				break
			}
			awaitCancel(t)
		})
	})
}

func TestNoReplyIsItsOwnError(t *testing.T) {
	forEachNet(t, func(t *testing.T, kind string) {
		server, client := hostPair(t, kind, Config{})
		// A handler that reads the request and closes without replying, like p2pd for a rejected request.
		server.lh.SetStreamHandler("S.rpc_silent", func(s network.Stream) {
			_, _, _ = readDelimited(s, DefaultMaxMessageSize, nil)
			_ = s.Close()
		})
		_, err := CallUnary[num](testContext(t), client, server.ID(), "S.rpc_silent", n(1))
		assert.ErrorIs(t, err, ErrNoReply)
		assert.NotErrorIs(t, err, ErrRemoteHandler)
	})
}
