package ipc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// testTimeout bounds every test's context: generous, these are liveness bounds.
const testTimeout = 60 * time.Second

// selfLauncher re-executes the test binary as a worker serving a fake node.
func selfLauncher(t testing.TB, env ...string) Launcher {
	// A race-enabled worker would sleep 1 s at exit (atexit_sleep_ms).
	env = append([]string{"GORACE=atexit_sleep_ms=0"}, env...)
	l, err := NewExecLauncher(ExecConfig{Path: os.Args[0], Env: env, Args: []string{"-test.run=^$"}})
	require.NoError(t, err)
	return l
}

func launchers(t *testing.T) map[string]Launcher {
	return map[string]Launcher{
		"in-process": inprocLauncher{newNode: newFakeNode},
		"exec":       selfLauncher(t),
	}
}

func rawMsgpack(t testing.TB, v any) msgpack.Raw {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestWorkerRoundTrip(t *testing.T) {
	for name, l := range launchers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			w, err := StartWorker(ctx, WorkerConfig{
				Name: "rt", Launcher: l, Logger: testLogger(t),
				Node: NodeConfig{StateDir: t.TempDir()},
			})
			require.NoError(t, err)
			defer func() { assert.Equal(t, StoppedGracefully, w.Stop(ctx)) }()

			key := dht.RawKey([]byte("k"))
			res, err := w.Store(ctx, dht.StoreItem{Key: key, Value: rawMsgpack(t, "v"), Expiration: 2e9})
			require.NoError(t, err)
			assert.True(t, res.Stored)

			got, err := w.Get(ctx, key, dht.GetOptions{Latest: true})
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.Equal(t, rawMsgpack(t, "v"), got.Value)
			assert.Equal(t, 2e9, got.Expiration)

			missing, err := w.Get(ctx, dht.RawKey([]byte("nope")), dht.GetOptions{})
			require.NoError(t, err)
			assert.Nil(t, missing)

			many, err := w.GetMany(ctx, []dht.Key{key, dht.RawKey([]byte("nope"))}, dht.GetOptions{})
			require.NoError(t, err)
			require.Len(t, many, 2)
			assert.NotNil(t, many[0])
			assert.Nil(t, many[1])

			rejected, err := w.Store(ctx, dht.StoreItem{Key: dht.RawKey([]byte("reject")), Value: rawMsgpack(t, 1), Expiration: 2e9})
			require.NoError(t, err, "a rejection is a result, not an error")
			assert.False(t, rejected.Stored)

			id, err := w.PeerID(ctx)
			require.NoError(t, err)
			assert.Equal(t, w.ID(), id)
			maddrs, err := w.VisibleMaddrs(ctx, true)
			require.NoError(t, err)
			assert.Equal(t, w.Maddrs(), maddrs)

			st, err := w.Stats(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, st.StoredKeys)
			assert.Equal(t, 1, st.PersistedRecords)
			require.NoError(t, w.Health(ctx))
		})
	}
}

// TestErrorsKeepTheirIdentity runs on both paths of Get: unary (in-process launcher) and the open
// streams of a WorkerConn (exec launcher). A typed error ends a stream as it ends a unary call.
func TestErrorsKeepTheirIdentity(t *testing.T) {
	for name, l := range launchers(t) {
		t.Run(name, func(t *testing.T) { testErrorsKeepTheirIdentity(t, l) })
	}
}

func testErrorsKeepTheirIdentity(t *testing.T, l Launcher) {
	ctx := testCtx(t)
	w, err := StartWorker(ctx, WorkerConfig{Launcher: l, Logger: testLogger(t)})
	require.NoError(t, err)
	defer w.Stop(ctx)

	tests := []struct {
		name string
		key  string
		want []error
	}{
		{name: "invalid key", key: "err:invalid-key", want: []error{dht.ErrInvalidKey, ErrInvalidArgument}},
		{name: "invalid value", key: "err:invalid-value", want: []error{dht.ErrInvalidValue, ErrInvalidArgument}},
		{name: "invalid argument", key: "err:invalid-arg", want: []error{dht.ErrInvalidArgument, ErrInvalidArgument}},
		{name: "no response", key: "err:no-response", want: []error{dht.ErrNoResponse}},
		{name: "shutdown", key: "err:shutdown", want: []error{dht.ErrShutdown}},
		{name: "too large", key: "err:too-large", want: []error{dht.ErrMessageTooLarge}},
		{name: "internal", key: "err:internal", want: []error{ErrRemote}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A Get that succeeds first leaves an open stream: the error comes on a reused one.
			_, err := w.Get(ctx, dht.RawKey([]byte("nope")), dht.GetOptions{})
			require.NoError(t, err)
			_, err = w.Get(ctx, dht.RawKey([]byte(tt.key)), dht.GetOptions{})
			require.Error(t, err)
			for _, want := range tt.want {
				assert.ErrorIs(t, err, want)
			}
			assert.NotErrorIs(t, err, ErrWorkerGone)
		})
	}

	t.Run("deadline", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := w.Get(dctx, dht.RawKey([]byte("hang")), dht.GetOptions{})
		assert.ErrorIs(t, err, ErrDeadlineExceeded)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("bad expiration fails before the worker", func(t *testing.T) {
		_, err := w.Store(ctx, dht.StoreItem{Key: dht.RawKey([]byte("x")), Value: rawMsgpack(t, 1), Expiration: nan()})
		assert.ErrorIs(t, err, dht.ErrInvalidExpiration)
	})
}

func nan() float64 { z := 0.0; return z / z }

func TestStartFailureReportsTheReason(t *testing.T) {
	ctx := testCtx(t)
	for name, l := range map[string]Launcher{
		"bootstrap failure": selfLauncher(t, envTestNode+"=fail"),
		"crash at start":    selfLauncher(t, envTestNode+"=crash"),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := StartWorker(ctx, WorkerConfig{Launcher: l, Logger: testLogger(t)})
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrStartFailed)
			if name == "bootstrap failure" {
				assert.ErrorIs(t, err, dht.ErrBootstrapFailed)
				assert.Contains(t, err.Error(), "none of the initial peers responded")
			} else {
				assert.Contains(t, err.Error(), "exit status 7")
			}
		})
	}
}

func TestExecWorkerStopsOnSIGTERMAndKeepsState(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	cfg := WorkerConfig{Launcher: selfLauncher(t), Logger: testLogger(t), Node: NodeConfig{StateDir: dir}}
	w, err := StartWorker(ctx, cfg)
	require.NoError(t, err)
	key := dht.RawKey([]byte("durable"))
	_, err = w.Store(ctx, dht.StoreItem{Key: key, Value: rawMsgpack(t, "x"), Expiration: 4e9})
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(w.PID(), syscall.SIGKILL))
	<-w.Done()
	assert.EqualError(t, w.ExitReason(), "signal: killed")
	_, err = w.Get(ctx, key, dht.GetOptions{})
	assert.ErrorIs(t, err, ErrWorkerGone)
	w.Stop(ctx)

	w2, err := StartWorker(ctx, cfg)
	require.NoError(t, err)
	assert.Equal(t, w.ID(), w2.ID(), "the identity file keeps the peer ID")
	assert.Equal(t, w.NodeID(), w2.NodeID(), "the node ID is persisted")
	assert.Equal(t, 1, w2.ReloadedRecords())
	got, err := w2.Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got, "an acknowledged record survives kill -9")
	// SIGINT is ignored (had it killed the worker, the exit reason would say so); SIGTERM, pending
	// with it and delivered after it (lower signal numbers first), drains and exits cleanly.
	require.NoError(t, syscall.Kill(w2.PID(), syscall.SIGINT))
	require.NoError(t, syscall.Kill(w2.PID(), syscall.SIGTERM))
	<-w2.Done()
	assert.NoError(t, w2.ExitReason(), "SIGINT ignored, SIGTERM drains and exits cleanly")
	assert.Equal(t, StoppedAlreadyExited, w2.Stop(ctx))
	_, err = os.Stat(filepath.Join(dir, "records.db"))
	assert.NoError(t, err)
	assert.False(t, errors.Is(err, os.ErrNotExist))
}
