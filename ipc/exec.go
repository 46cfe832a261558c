package ipc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// SelfExe is the default worker binary: this very executable, re-executed.
const SelfExe = "/proc/self/exe"

// DefaultHandshakeTimeout bounds the go-plugin handshake of a launched worker.
const DefaultHandshakeTimeout = 30 * time.Second

// DefaultWorkerGOMAXPROCS is a worker's GOMAXPROCS unless configured. A worker is I/O-bound (hivemind
// runs its DHT on one asyncio thread) and a pool runs several on one machine: with more than one P,
// every goroutine hand-off of a call (reader, handler, writer) wakes an idle thread to spin on another
// CPU, which costs a small machine about 25 µs of CPU and 10–30 µs of latency per call, and CPU the
// other processes could use. The price is a slower start (about 15 ms more on 2 CPUs) and one CPU for
// the node's own work (handshakes, validators) under heavy load.
const DefaultWorkerGOMAXPROCS = 1

// ExecConfig configures an ExecLauncher. The zero value re-executes this binary with mutual TLS on.
type ExecConfig struct {
	// Path is the worker binary. Default SelfExe: the binary must call worker.Main() first thing.
	Path string
	// Args are the arguments after argv[0].
	Args []string
	// Env is added to the inherited environment.
	Env []string
	// DisableAutoMTLS turns the automatic mutual TLS off (the socket directory is 0700 either
	// way). With it on, the launcher and each worker authenticate each other with certificates of
	// an authority the launcher makes (see launcherTLS). TLS costs each call about 5–10 µs of CPU
	// on each side (record encryption and the extra copies) and 10–25 µs of latency on a small
	// machine.
	DisableAutoMTLS bool
	// SocketDir is where each worker's 0700 socket directory is created. Default os.TempDir().
	SocketDir string
	// GOMAXPROCS is each worker's runtime.GOMAXPROCS, given as its GOMAXPROCS environment
	// variable. Zero means the GOMAXPROCS that Env or else this process's environment sets, else
	// DefaultWorkerGOMAXPROCS; negative means Go's default (every CPU the worker may use). A
	// GOMAXPROCS in Env always wins. (Other runtime settings, such as GOGC or GOMEMLIMIT, go in Env.)
	GOMAXPROCS int
	// HandshakeTimeout bounds the handshake. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// Validate checks the configuration.
func (c ExecConfig) Validate() error {
	var errs []error
	if c.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: HandshakeTimeout: negative (%v)", ErrInvalidConfig, c.HandshakeTimeout))
	}
	if c.Path != "" && c.Path != SelfExe {
		if _, err := os.Stat(c.Path); err != nil {
			errs = append(errs, fmt.Errorf("%w: Path: %w", ErrInvalidConfig, err))
		}
	}
	if c.SocketDir != "" {
		if fi, err := os.Stat(c.SocketDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("%w: SocketDir: %q is not a directory", ErrInvalidConfig, c.SocketDir))
		}
	}
	return errors.Join(errs...)
}

// ExecLauncher launches workers as child processes through go-plugin: a new exec.Cmd and a new
// go-plugin client per launch, the unix socket in a fresh 0700 directory, mutual TLS with
// certificates of the launcher's own authority by default (launcherTLS), the
// worker's stderr relayed line by line into the LaunchSpec's logger, and a child that dies with this
// process (see execRunner). Its processes' connections are WorkerConns (Get on open streams), with
// static flow-control windows; workers run with GOMAXPROCS DefaultWorkerGOMAXPROCS unless configured.
type ExecLauncher struct {
	cfg ExecConfig
	tls *launcherTLS // nil when DisableAutoMTLS
}

var _ Launcher = (*ExecLauncher)(nil)

// NewExecLauncher validates cfg and returns a launcher.
func NewExecLauncher(cfg ExecConfig) (*ExecLauncher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		cfg.Path = SelfExe
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	cfg.Args = append([]string(nil), cfg.Args...)
	cfg.Env = append([]string(nil), cfg.Env...)
	l := &ExecLauncher{cfg: cfg}
	if !cfg.DisableAutoMTLS {
		t, err := newLauncherTLS()
		if err != nil {
			return nil, fmt.Errorf("ipc: worker TLS: %w", err)
		}
		l.tls = t
	}
	return l, nil
}

// workerEnv is what a worker's environment adds to this process's: GOMAXPROCS, then Env (whose
// GOMAXPROCS, if any, wins: the last of duplicate variables is used).
func (l *ExecLauncher) workerEnv() []string {
	n := l.cfg.GOMAXPROCS
	if n == 0 && !l.inheritsGOMAXPROCS() {
		n = DefaultWorkerGOMAXPROCS
	}
	env := make([]string, 0, len(l.cfg.Env)+1)
	if n > 0 {
		env = append(env, envGOMAXPROCS+"="+strconv.Itoa(n))
	}
	return append(env, l.cfg.Env...)
}

// inheritsGOMAXPROCS reports whether Env or this process's environment sets GOMAXPROCS.
func (l *ExecLauncher) inheritsGOMAXPROCS() bool {
	_, set := os.LookupEnv(envGOMAXPROCS)
	return set || slices.ContainsFunc(l.cfg.Env, func(kv string) bool { return strings.HasPrefix(kv, envGOMAXPROCS+"=") })
}

// dropInheritedEnv removes from a worker's inherited environment what must not reach it: GOMAXPROCS
// when the worker is to use Go's default, and the TLS settings of this process's own launcher, if
// any (a go-plugin client certificate or ipcpb.EnvTLS would make the worker expect TLS this
// launcher does not speak).
func (l *ExecLauncher) dropInheritedEnv(env []string) []string {
	return slices.DeleteFunc(env, func(kv string) bool {
		return (l.cfg.GOMAXPROCS < 0 && strings.HasPrefix(kv, envGOMAXPROCS+"=")) ||
			strings.HasPrefix(kv, envPluginClientCert+"=") || strings.HasPrefix(kv, ipcpb.EnvTLS+"=")
	})
}

// runnerSlot hands the runner go-plugin asks for back to Launch, and lets Launch abort a start.
type runnerSlot struct {
	mu      sync.Mutex
	r       *execRunner
	aborted bool
}

// Launch starts a worker process and completes the handshake.
func (l *ExecLauncher) Launch(ctx context.Context, spec LaunchSpec) (Process, error) {
	logger := spec.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("slot", spec.Name)
	env := l.workerEnv()
	var tlsMaterial []byte
	var tlsConfig *tls.Config
	if l.tls != nil {
		var err error
		if tlsMaterial, err = l.tls.workerMaterial(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrStartFailed, spec.Name, err)
		}
		env = append(env, ipcpb.EnvTLS+"="+ipcpb.EnvTLSStdin)
		tlsConfig = l.tls.clientConfig()
	}
	slot := &runnerSlot{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: Handshake(),
		Plugins:         PluginSet(),
		RunnerFunc: func(_ hclog.Logger, cmd *exec.Cmd, _ string) (runner.Runner, error) {
			slot.mu.Lock()
			defer slot.mu.Unlock()
			if slot.aborted {
				return nil, context.Canceled
			}
			cmd.Env = l.dropInheritedEnv(cmd.Env)
			slot.r = newExecRunner(cmd, l.cfg.Path, l.cfg.Args, env, spec.Name)
			if tlsMaterial != nil {
				cmd.Stdin = bytes.NewReader(tlsMaterial) // a pipe only the worker reads
			}
			return slot.r, nil
		},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  grpcDialOptions(),
		TLSConfig:        tlsConfig,
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: l.cfg.SocketDir},
		StartTimeout:     l.cfg.HandshakeTimeout,
		Stderr:           newLogRelay(logger),
		// go-plugin's own logger is off: with it off, go-plugin does not parse the worker's stderr
		// itself, our relay does (and keeps levels and attributes).
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
	})

	started := make(chan error, 1)
	go func() {
		_, err := client.Start()
		started <- err
	}()
	var err error
	select {
	case err = <-started:
	case <-ctx.Done():
		slot.mu.Lock()
		slot.aborted = true
		if slot.r != nil {
			_ = slot.r.Kill(context.Background())
		}
		slot.mu.Unlock()
		<-started // returns promptly: the process is dead or was never started
		err = ctx.Err()
	}
	var cc *grpc.ClientConn
	if err == nil {
		cc, err = dispenseConn(client)
	}
	if err != nil {
		slot.mu.Lock()
		r := slot.r
		slot.mu.Unlock()
		if r != nil && r.pid != 0 {
			_ = r.Kill(context.Background())
			<-r.done
		}
		client.Kill() // the process is gone (or never existed): returns at once
		return nil, fmt.Errorf("%w: %s: %w", ErrStartFailed, spec.Name, err)
	}
	slot.mu.Lock()
	r := slot.r
	slot.mu.Unlock()
	logger.Debug("worker launched", "pid", r.pid, "path", l.cfg.Path)
	return &execProcess{client: client, runner: r, conn: NewWorkerConn(cc)}, nil
}

// Environment variables of a worker this package looks at.
const (
	// envPluginClientCert is where go-plugin's AutoMTLS hands the parent's certificate to a plugin.
	envPluginClientCert = "PLUGIN_CLIENT_CERT"
	envGOMAXPROCS       = "GOMAXPROCS"
)

// grpcDialOptions are added to go-plugin's own (unix dialer, TLS or not, unlimited message sizes).
func grpcDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithStaticStreamWindowSize(ipcpb.StreamWindow),
		grpc.WithStaticConnWindowSize(ipcpb.ConnWindow),
	}
}

// execProcess is a worker launched by ExecLauncher.
type execProcess struct {
	client *plugin.Client
	runner *execRunner
	conn   *WorkerConn

	releaseOnce sync.Once
}

func (p *execProcess) Conn() grpc.ClientConnInterface { return p.conn }
func (p *execProcess) PID() int                       { return p.runner.pid }
func (p *execProcess) Done() <-chan struct{}          { return p.runner.done }
func (p *execProcess) ExitReason() error              { return p.runner.exitErr }

func (p *execProcess) Signal(sig syscall.Signal) error { return p.runner.signal(sig) }

// Release kills the worker if it still runs, waits for it to be reaped, then lets go-plugin clean up
// (Kill returns at once on a dead process: it never blocks on a stopped worker).
func (p *execProcess) Release() {
	p.releaseOnce.Do(func() {
		_ = p.runner.signal(syscall.SIGKILL)
		<-p.runner.done
		p.conn.closeStreams()
		p.client.Kill()
	})
}
