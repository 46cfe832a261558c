package ipc

import (
	"context"
	"errors"
	"log/slog"
	"syscall"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Launcher makes a worker exist: ExecLauncher starts a process (the default: this binary,
// re-executed), tests may serve a worker in process. Supervision (Pool) and the stop sequence are
// not its business.
type Launcher interface {
	// Launch starts one worker and returns once the go-plugin handshake is done and a gRPC
	// connection to it is open (the worker is not configured yet). It returns when ctx is done,
	// leaving nothing behind. Every call makes a new process and a new go-plugin client.
	Launch(ctx context.Context, spec LaunchSpec) (Process, error)
}

// LaunchSpec describes the worker to launch.
type LaunchSpec struct {
	// Name identifies the worker in logs (a pool slot's name).
	Name string
	// Logger receives the worker's log lines (with the slot=Name attribute added by the launcher).
	// Default slog.Default().
	Logger *slog.Logger
}

// Process is one launched worker.
//
// Contract: Conn, PID, Done and Signal are safe for concurrent use; ExitReason is valid once Done is
// closed; Release is called exactly once, after Done is closed or to give up on the worker (it kills
// it first), and frees everything the launcher holds for it.
type Process interface {
	// Conn is the connection that carries ipcpb.Worker and the gRPC health service.
	Conn() grpc.ClientConnInterface
	// PID is the worker's process ID (0 for an in-process worker).
	PID() int
	// Done is closed when the worker has exited.
	Done() <-chan struct{}
	// ExitReason is nil for a clean exit (status 0), otherwise why the process ended
	// ("exit status 1", "signal: killed", ...).
	ExitReason() error
	// Signal sends sig to the worker; it fails with os.ErrProcessDone after the worker exited.
	Signal(sig syscall.Signal) error
	// Release frees the launcher's resources for the worker (for go-plugin: Kill, which returns at
	// once because the process is gone); it kills a worker still running.
	Release()
}

// errClientHalf is returned by the worker half of the plugin, which the parent never serves.
var errClientHalf = errors.New("ipc: the parent does not serve the worker plugin")

// grpcPlugin is the parent's half of the go-plugin plugin: dispensing it yields the connection.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

var _ plugin.GRPCPlugin = grpcPlugin{}

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return errClientHalf }

func (grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return cc, nil
}

// Handshake is the go-plugin handshake of workers; worker.Handshake builds the same one from the same
// ipcpb constants.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ipcpb.ProtocolVersion,
		MagicCookieKey:   ipcpb.MagicCookieKey,
		MagicCookieValue: ipcpb.MagicCookieValue,
	}
}

// PluginSet is the parent's plugin set: the worker plugin, dispensed as a *grpc.ClientConn.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{ipcpb.PluginName: grpcPlugin{}}
}

// dispenseConn returns the worker connection of a started go-plugin client.
func dispenseConn(c *plugin.Client) (*grpc.ClientConn, error) {
	rpc, err := c.Client()
	if err != nil {
		return nil, err
	}
	raw, err := rpc.Dispense(ipcpb.PluginName)
	if err != nil {
		return nil, err
	}
	cc, ok := raw.(*grpc.ClientConn)
	if !ok {
		return nil, errors.New("ipc: dispensed plugin is not a gRPC connection")
	}
	return cc, nil
}
