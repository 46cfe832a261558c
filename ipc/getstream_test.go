package ipc

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// scriptedWorker serves Get and GetStream from scripts, counting the calls of each: the stream
// tests break the stream under a call and watch what the client does next.
type scriptedWorker struct {
	ipcpb.UnimplementedWorkerServer

	// stream answers the n-th request received on any stream (from 1); an error ends that stream.
	// Nil: GetStream is not served (UNIMPLEMENTED).
	stream func(ctx context.Context, n int) (*ipcpb.GetResponse, error)
	// unary answers the n-th unary Get (from 1); nil: the answer "unary".
	unary func(ctx context.Context, n int) (*ipcpb.GetResponse, error)

	streamCalls, unaryCalls atomic.Int32

	mu            sync.Mutex
	unaryDeadline time.Time // the deadline the last unary Get's context carried
}

func (w *scriptedWorker) GetStream(stream ipcpb.Worker_GetStreamServer) error {
	if w.stream == nil {
		return w.UnimplementedWorkerServer.GetStream(stream)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return nil // the caller closed or cancelled the stream
		}
		resp, err := w.stream(stream.Context(), int(w.streamCalls.Add(1)))
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (w *scriptedWorker) Get(ctx context.Context, _ *ipcpb.GetRequest) (*ipcpb.GetResponse, error) {
	n := int(w.unaryCalls.Add(1))
	if d, ok := ctx.Deadline(); ok {
		w.mu.Lock()
		w.unaryDeadline = d
		w.mu.Unlock()
	}
	if w.unary == nil {
		return answer("unary"), nil
	}
	return w.unary(ctx, n)
}

func (w *scriptedWorker) lastUnaryDeadline() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unaryDeadline
}

// answer is a found record whose value names the path that answered.
func answer(path string) *ipcpb.GetResponse {
	return &ipcpb.GetResponse{Result: &ipcpb.GetResult{Found: true, Value: &ipcpb.Value{Value: []byte(path), Expiration: 2e9}}}
}

// connListener is a bufconn listener that can close the server's end of every connection it
// accepted: the connection breaks under the calls in flight, and the client dials a new one.
type connListener struct {
	*bufconn.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *connListener) breakConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// serveScripted serves w in process and returns a Client of a WorkerConn to it (the stream path).
func serveScripted(t *testing.T, w *scriptedWorker) (*Client, *connListener) {
	t.Helper()
	lis := &connListener{Listener: bufconn.Listen(1 << 20)}
	srv := grpc.NewServer()
	ipcpb.RegisterWorkerServer(srv, w)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient("passthrough:///scripted",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	wc := NewWorkerConn(cc)
	t.Cleanup(func() {
		wc.closeStreams()
		_ = cc.Close()
		srv.Stop()
		<-served
	})
	return NewClient(wc, nil), lis
}

// deadlineSlack is how late past its context's deadline a call may return: scheduling only, generous
// for a loaded machine under -race (a call that waited for its handler would take the test's minute).
const deadlineSlack = 2 * time.Second

// getWithin makes one Get bounded by timeout and checks that it returned by the deadline (plus
// scheduling slack).
func getWithin(t *testing.T, c *Client, timeout time.Duration) (r *dht.Result, deadline time.Time, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), timeout)
	defer cancel()
	deadline, _ = ctx.Deadline()
	r, err = c.Get(ctx, dht.RawKey([]byte("k")), dht.GetOptions{})
	assert.False(t, time.Now().After(deadline.Add(deadlineSlack)), "the call outlived its deadline by %v", time.Since(deadline))
	return r, deadline, err
}

// assertCallersDeadline checks that a worker's handler ran under the caller's deadline (gRPC sends it
// as a timeout: the worker's copy is a little later).
func assertCallersDeadline(t *testing.T, caller, handler time.Time) {
	t.Helper()
	require.False(t, handler.IsZero(), "the handler's context has no deadline")
	assert.WithinDuration(t, caller, handler, 100*time.Millisecond, "the retry carries the caller's deadline")
}

func requireValue(t *testing.T, r *dht.Result, err error, path string) {
	t.Helper()
	require.NoError(t, err)
	require.NotNil(t, r)
	assert.Equal(t, path, string(r.Value))
}

// brokenStream is the status of a stream reset under a call: untyped, as gRPC reports a transport's.
var brokenStream = status.Error(codes.Unavailable, "stream reset")

func TestGetRetriesUnaryOnceWhenTheStreamBreaksMidCall(t *testing.T) {
	t.Run("fresh stream", func(t *testing.T) {
		w := &scriptedWorker{stream: func(context.Context, int) (*ipcpb.GetResponse, error) { return nil, brokenStream }}
		c, _ := serveScripted(t, w)
		r, _, err := getWithin(t, c, 5*time.Second)
		requireValue(t, r, err, "unary")
		assert.Equal(t, int32(1), w.streamCalls.Load(), "the worker had the request when the stream broke")
		assert.Equal(t, int32(1), w.unaryCalls.Load(), "retried once, unary")
	})

	t.Run("reused stream", func(t *testing.T) {
		w := &scriptedWorker{stream: func(_ context.Context, n int) (*ipcpb.GetResponse, error) {
			if n == 1 {
				return answer("stream"), nil
			}
			return nil, brokenStream
		}}
		c, _ := serveScripted(t, w)
		r, _, err := getWithin(t, c, 5*time.Second)
		requireValue(t, r, err, "stream")
		r, _, err = getWithin(t, c, 5*time.Second) // on the stream the first call put back
		requireValue(t, r, err, "unary")
		assert.Equal(t, int32(2), w.streamCalls.Load())
		assert.Equal(t, int32(1), w.unaryCalls.Load())
		r, _, err = getWithin(t, c, 5*time.Second) // a new stream
		requireValue(t, r, err, "unary")
		assert.Equal(t, int32(3), w.streamCalls.Load())
		assert.Equal(t, int32(2), w.unaryCalls.Load())
	})

	t.Run("connection closed mid-call", func(t *testing.T) {
		var lis *connListener
		w := &scriptedWorker{stream: func(ctx context.Context, _ int) (*ipcpb.GetResponse, error) {
			lis.breakConns()
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		var c *Client
		c, lis = serveScripted(t, w)
		r, deadline, err := getWithin(t, c, 5*time.Second)
		requireValue(t, r, err, "unary") // on the connection the client dialled again
		assert.Equal(t, int32(1), w.unaryCalls.Load())
		assertCallersDeadline(t, deadline, w.lastUnaryDeadline())
	})

	t.Run("the retry ends at the caller's deadline", func(t *testing.T) {
		unaryDone := make(chan error, 1)
		w := &scriptedWorker{
			stream: func(context.Context, int) (*ipcpb.GetResponse, error) { return nil, brokenStream },
			unary: func(ctx context.Context, _ int) (*ipcpb.GetResponse, error) {
				<-ctx.Done()
				unaryDone <- ctx.Err()
				return nil, ctx.Err()
			},
		}
		c, _ := serveScripted(t, w)
		_, deadline, err := getWithin(t, c, 300*time.Millisecond)
		assert.ErrorIs(t, err, ErrDeadlineExceeded)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, int32(1), w.unaryCalls.Load(), "retried once")
		assertCallersDeadline(t, deadline, w.lastUnaryDeadline())
		select {
		case err := <-unaryDone:
			assert.Error(t, err, "the worker's handler saw the deadline")
		case <-time.After(5 * time.Second):
			t.Fatal("the worker's unary handler still runs")
		}
	})
}

func TestGetDoesNotRetryAWorkerAnswer(t *testing.T) {
	noResponse, err := status.New(codes.Unavailable, "fake get: dht: no response").WithDetails(
		&errdetails.ErrorInfo{Domain: ipcpb.ErrorDomain, Reason: ipcpb.ReasonNoResponse})
	require.NoError(t, err)

	t.Run("typed error", func(t *testing.T) {
		// The same code as a broken stream's (UNAVAILABLE), but a dht sentinel: the worker's answer.
		w := &scriptedWorker{stream: func(_ context.Context, n int) (*ipcpb.GetResponse, error) {
			if n == 1 {
				return answer("stream"), nil
			}
			return nil, noResponse.Err()
		}}
		c, _ := serveScripted(t, w)
		r, _, err := getWithin(t, c, 5*time.Second)
		requireValue(t, r, err, "stream")
		_, _, err = getWithin(t, c, 5*time.Second) // reused stream
		assert.ErrorIs(t, err, dht.ErrNoResponse)
		assert.NotErrorIs(t, err, ErrWorkerGone)
		assert.Equal(t, int32(0), w.unaryCalls.Load(), "a typed worker error is not retried")
	})

	t.Run("stream hangs until the deadline", func(t *testing.T) {
		w := &scriptedWorker{stream: func(ctx context.Context, _ int) (*ipcpb.GetResponse, error) {
			<-ctx.Done()
			return nil, status.FromContextError(ctx.Err()).Err()
		}}
		c, _ := serveScripted(t, w)
		_, _, err := getWithin(t, c, 300*time.Millisecond)
		assert.ErrorIs(t, err, ErrDeadlineExceeded)
		assert.Equal(t, int32(0), w.unaryCalls.Load(), "no retry once the context ended")
	})
}

func TestGetFallsBackToUnaryWithoutGetStream(t *testing.T) {
	w := &scriptedWorker{} // GetStream: UNIMPLEMENTED
	c, _ := serveScripted(t, w)
	for range 3 {
		r, _, err := getWithin(t, c, 5*time.Second)
		requireValue(t, r, err, "unary")
	}
	assert.Equal(t, int32(3), w.unaryCalls.Load())
}
