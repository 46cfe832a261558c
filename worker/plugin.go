package worker

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Handshake is the go-plugin handshake a worker serves with; package ipc builds the same one from
// the same ipcpb constants.
func Handshake() plugin.HandshakeConfig {
	return plugin.HandshakeConfig{
		ProtocolVersion:  ipcpb.ProtocolVersion,
		MagicCookieKey:   ipcpb.MagicCookieKey,
		MagicCookieValue: ipcpb.MagicCookieValue,
	}
}

// Plugin is the worker half of the go-plugin plugin: it registers a Server on go-plugin's gRPC
// server. Its client half lives in package ipc.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin
	Worker *Server
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer registers the Worker service.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	ipcpb.RegisterWorkerServer(s, p.Worker)
	return nil
}

// GRPCClient is the parent's half and is not served by a worker.
func (p *Plugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("worker: the client half of the plugin lives in package ipc")
}

// PluginSet is the plugin set a worker serves.
func PluginSet(s *Server) plugin.PluginSet {
	return plugin.PluginSet{ipcpb.PluginName: &Plugin{Worker: s}}
}
