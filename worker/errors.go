package worker

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Sentinel errors of the worker package.
var (
	// ErrNotConfigured: a call arrived before Configure succeeded.
	ErrNotConfigured = errors.New("worker: not configured")
	// ErrAlreadyConfigured: Configure was called a second time.
	ErrAlreadyConfigured = errors.New("worker: already configured")
	// ErrUnsupportedVersion: the ConfigureRequest version is unknown to this build.
	ErrUnsupportedVersion = errors.New("worker: unsupported config version")
	// ErrInvalidConfig: the node configuration is malformed.
	ErrInvalidConfig = errors.New("worker: invalid config")
	// ErrParentGone: the launching process is gone (lifeline EOF or a different parent pid).
	ErrParentGone = errors.New("worker: parent process gone")
	// ErrState: the state directory cannot be used.
	ErrState = errors.New("worker: state directory unusable")
)

// sentinelCodes maps each sentinel that may cross the boundary to its gRPC code and ErrorInfo reason;
// ipc maps the reason back to the same sentinel. Order matters only for errors wrapping several.
var sentinelCodes = []struct {
	err    error
	code   codes.Code
	reason string
}{
	{err: ErrNotConfigured, code: codes.FailedPrecondition, reason: ipcpb.ReasonNotConfigured},
	{err: ErrAlreadyConfigured, code: codes.FailedPrecondition, reason: ipcpb.ReasonAlreadyConfigured},
	{err: dht.ErrBootstrapFailed, code: codes.Unavailable, reason: ipcpb.ReasonBootstrapFailed},
	{err: dht.ErrValidation, code: codes.FailedPrecondition, reason: ipcpb.ReasonValidation},
	{err: dht.ErrShutdown, code: codes.Unavailable, reason: ipcpb.ReasonShutdown},
	{err: dht.ErrNoResponse, code: codes.Unavailable, reason: ipcpb.ReasonNoResponse},
	{err: dht.ErrMessageTooLarge, code: codes.ResourceExhausted, reason: ipcpb.ReasonMessageTooLarge},
	{err: dht.ErrIDOutOfRange, code: codes.InvalidArgument, reason: ipcpb.ReasonIDOutOfRange},
	{err: dht.ErrInvalidKey, code: codes.InvalidArgument, reason: ipcpb.ReasonInvalidKey},
	{err: dht.ErrInvalidValue, code: codes.InvalidArgument, reason: ipcpb.ReasonInvalidValue},
	{err: dht.ErrInvalidExpiration, code: codes.InvalidArgument, reason: ipcpb.ReasonInvalidExpiration},
	{err: dht.ErrInvalidArgument, code: codes.InvalidArgument, reason: ipcpb.ReasonInvalidArgument},
}

// toStatus converts an error returned by the node into a gRPC status error: context errors become
// DEADLINE_EXCEEDED / CANCELED, dht sentinels their code plus an ErrorInfo naming them, the worker's
// config errors INVALID_ARGUMENT, anything else INTERNAL. The message is err's text.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	for _, s := range sentinelCodes {
		if errors.Is(err, s.err) {
			st := status.New(s.code, err.Error())
			if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{
				Reason: s.reason,
				Domain: ipcpb.ErrorDomain,
			}); derr == nil {
				st = withInfo
			}
			return st.Err()
		}
	}
	switch {
	case errors.Is(err, ErrInvalidConfig), errors.Is(err, ErrUnsupportedVersion):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrState):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}
