package worker

import (
	"context"
	"errors"
	"io"

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

// GRPCServer registers the Worker service and its stream fast path (WorkerStreamService).
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	ipcpb.RegisterWorkerServer(s, p.Worker)
	s.RegisterService(&workerStreamDesc, p.Worker)
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

// The stream fast path of the Worker service. A unary call opens a new HTTP/2 stream and closes it:
// header encoding and decoding, stream bookkeeping, a hand-off to a stream worker and trailers, about
// half of a round trip's cost between two processes. The parent instead keeps streams open and sends
// one request at a time on each, in order, as it would the unary call; the answers are the unary
// call's, with the same messages. As a service it reads (proto/ipcpb is where it belongs):
//
//	service WorkerStream {
//	  // Get answers each GetRequest with a GetResponse, in order; an error ends the stream with the
//	  // status the unary Get returns. The caller's deadline reaches the node as the stream's
//	  // cancellation: the caller cancels the stream when its context ends.
//	  rpc Get(stream GetRequest) returns (stream GetResponse);
//	}
//
// ipc.Client uses it for Get, and falls back to the unary call when a worker does not serve it.
const (
	WorkerStreamService = "hivemind.ipc.v1.WorkerStream"
	// WorkerStreamGetMethod is the full method name of WorkerStream.Get; package ipc spells the
	// same string.
	WorkerStreamGetMethod = "/" + WorkerStreamService + "/Get"
)

// getServer is what WorkerStream needs of a Server.
type getServer interface {
	Get(context.Context, *ipcpb.GetRequest) (*ipcpb.GetResponse, error)
}

var workerStreamDesc = grpc.ServiceDesc{
	ServiceName: WorkerStreamService,
	HandlerType: (*getServer)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Get",
		Handler:       serveGetStream,
		ServerStreams: true,
		ClientStreams: true,
	}},
}

// serveGetStream answers the Get requests of one stream in order, until the caller closes it.
func serveGetStream(srv any, stream grpc.ServerStream) error {
	s := srv.(getServer)
	ctx := stream.Context()
	for {
		req := new(ipcpb.GetRequest)
		if err := stream.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp, err := s.Get(ctx, req)
		if err != nil {
			return err // a status error: it ends the stream, the caller opens another
		}
		if err := stream.SendMsg(resp); err != nil {
			return err
		}
	}
}
