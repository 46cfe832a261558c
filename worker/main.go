package worker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// EnvLogLevel sets a worker's log level (trace, debug, info, warn, error; default info).
const EnvLogLevel = "HIVEMIND_WORKER_LOG_LEVEL"

// Exit codes of a worker process.
const (
	exitOK         = 0
	exitServeError = 1
	exitParentGone = 3
)

// Timeouts of a worker's own teardown.
const (
	drainTimeout      = 10 * time.Second
	grpcDrainDeadline = 100 * time.Millisecond
)

// Main runs the worker when this process was started as one (go-plugin's cookie is in the
// environment) and never returns then: the process exits when the worker is done. Without the cookie
// it returns false at once. Call it first thing in every main that launches workers by re-executing
// itself:
//
//	func main() {
//		worker.Main()
//		...
//	}
func Main() bool { return MainWith(ServerConfig{}) }

// MainWith is Main with a server configuration of the caller's (another NodeFactory, a logger level
// of its own). The Logger field is ignored: a worker always logs JSON on its stderr.
func MainWith(cfg ServerConfig) bool {
	if _, ok := os.LookupEnv(ipcpb.MagicCookieKey); !ok {
		return false
	}
	os.Exit(run(cfg))
	return true
}

// run is the worker process: it returns the exit code.
func run(cfg ServerConfig) int {
	// Capture stderr before go-plugin swaps os.Stderr for its stdio pipe; stdout is reserved for the
	// handshake line and nothing else ever writes to it.
	stderr := os.Stderr
	// The parent attaches the slot name to every relayed line.
	logger := NewLogger(stderr, parseLevel(os.Getenv(EnvLogLevel)))
	slog.SetDefault(logger) // this process is a worker: its default logger is the relay
	cfg.Logger = logger

	stopProfiles := startProfiles(os.Getenv(EnvProfileDir), logger)
	defer stopProfiles()

	lifeline, err := watchParent()
	if err != nil {
		logger.Error("parent check failed; exiting", "error", err)
		return exitParentGone
	}
	signal.Ignore(syscall.SIGINT) // the parent decides when a worker stops (Ctrl-C reaches the whole group)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)

	tlsConfig, err := serverTLS(os.Getenv(ipcpb.EnvTLS), os.Stdin)
	if err != nil {
		logger.Error("cannot serve", "error", err)
		return exitServeError
	}
	var tlsProvider func() (*tls.Config, error)
	if tlsConfig != nil {
		tlsProvider = func() (*tls.Config, error) { return tlsConfig, nil }
	}

	srv := NewServer(cfg)
	grpcCh := make(chan *grpc.Server, 1)
	served := make(chan struct{})
	go func() {
		defer close(served)
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: Handshake(),
			Plugins:         PluginSet(srv),
			TLSProvider:     tlsProvider,
			GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
				s := grpc.NewServer(append(opts, grpcServerOptions()...)...)
				grpcCh <- s
				return s
			},
			Logger: hclog.New(&hclog.LoggerOptions{
				Name:       "go-plugin",
				Level:      hclog.Warn,
				Output:     stderr,
				JSONFormat: true,
			}),
		})
	}()

	code := exitOK
	select {
	case <-served:
		logger.Info("plugin server stopped")
	case <-srv.Done():
		logger.Info("shutdown requested")
	case sig := <-term:
		logger.Info("terminating", "signal", sig.String())
	case err := <-lifeline:
		logger.Warn("parent gone; exiting", "reason", err)
		code = exitParentGone
	}
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		logger.Warn("drain", "error", err)
	}
	select {
	case s := <-grpcCh:
		stopGRPC(s)
	default:
	}
	return code
}

// grpcServerOptions are added to go-plugin's (TLS credentials when the launcher hands the worker its
// certificate, see serverTLS).
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		// Streams are served by a fixed set of goroutines instead of a new one each (whose stack
		// grows anew every call) while one is free; the parent's open Get streams keep theirs.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.StaticStreamWindowSize(ipcpb.StreamWindow),
		grpc.StaticConnWindowSize(ipcpb.ConnWindow),
	}
}

// stopGRPC lets in-flight replies (the Shutdown RPC's) leave, bounded: go-plugin's stdio and broker
// streams never end on their own, so a graceful stop is cut short.
func stopGRPC(s *grpc.Server) {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grpcDrainDeadline)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.Stop()
		<-done
	}
}

// watchLifeline reads the lifeline pipe until EOF (or an error) and then reports the parent gone.
func watchLifeline(f *os.File, out chan<- error) {
	_, err := io.Copy(io.Discard, f)
	if err == nil {
		err = errors.New("lifeline pipe closed")
	}
	out <- fmt.Errorf("%w: %w", ErrParentGone, err)
}
