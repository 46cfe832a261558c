package ipc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Sentinel errors of the ipc package. Every error a Client, Worker or Pool returns wraps one of
// them or one of package dht's sentinels (errors.Is); errors that crossed the process boundary with a
// dht cause wrap that same dht sentinel.
var (
	// ErrWorkerGone: the worker process exited or its connection broke during the call.
	ErrWorkerGone = errors.New("ipc: worker gone")
	// ErrRestarting: the pool slot is between two workers (backing off or starting) and the caller
	// did not ask to wait.
	ErrRestarting = errors.New("ipc: worker restarting")
	// ErrDeadlineExceeded: the call's deadline passed. Such errors also wrap
	// context.DeadlineExceeded.
	ErrDeadlineExceeded = errors.New("ipc: deadline exceeded")
	// ErrCanceled: the call's context was cancelled. Such errors also wrap context.Canceled.
	ErrCanceled = errors.New("ipc: canceled")
	// ErrInvalidArgument: the worker rejected the call's arguments (dht's invalid-key, -value,
	// -expiration and -argument errors wrap it too when they come back from a worker).
	ErrInvalidArgument = errors.New("ipc: invalid argument")
	// ErrNotConfigured: the worker has not been configured (Configure never succeeded).
	ErrNotConfigured = errors.New("ipc: worker not configured")
	// ErrStartFailed: a worker could not be launched, handshaken or configured.
	ErrStartFailed = errors.New("ipc: worker failed to start")
	// ErrGaveUp: a pool slot exceeded its restart intensity and stopped restarting.
	ErrGaveUp = errors.New("ipc: slot gave up")
	// ErrStopped: the worker or pool was stopped (by its owner).
	ErrStopped = errors.New("ipc: stopped")
	// ErrInvalidConfig: a configuration failed validation.
	ErrInvalidConfig = errors.New("ipc: invalid config")
	// ErrRemote: the worker failed the call for a reason with no sentinel of its own (an internal
	// error); the message is the worker's.
	ErrRemote = errors.New("ipc: worker error")
)

// reasonSentinels maps ErrorInfo reasons (ipcpb.Reason*) back to the sentinels the worker started
// from.
var reasonSentinels = map[string]error{
	ipcpb.ReasonIDOutOfRange:      dht.ErrIDOutOfRange,
	ipcpb.ReasonInvalidKey:        dht.ErrInvalidKey,
	ipcpb.ReasonInvalidValue:      dht.ErrInvalidValue,
	ipcpb.ReasonInvalidExpiration: dht.ErrInvalidExpiration,
	ipcpb.ReasonInvalidArgument:   dht.ErrInvalidArgument,
	ipcpb.ReasonNoResponse:        dht.ErrNoResponse,
	ipcpb.ReasonBootstrapFailed:   dht.ErrBootstrapFailed,
	ipcpb.ReasonValidation:        dht.ErrValidation,
	ipcpb.ReasonShutdown:          dht.ErrShutdown,
	ipcpb.ReasonMessageTooLarge:   dht.ErrMessageTooLarge,
	ipcpb.ReasonNotConfigured:     ErrNotConfigured,
	ipcpb.ReasonAlreadyConfigured: ErrInvalidArgument,
}

// RemoteError is an error status a worker returned. It wraps the dht (or ipc) sentinel the worker's
// error started from, when it had one, and the ipc sentinel that classifies its gRPC code.
type RemoteError struct {
	// Op is the RPC, e.g. "Get".
	Op string
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the worker's error text.
	Message string
	// errs are the sentinels this error wraps.
	errs []error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("ipc: %s: %s", e.Op, strings.TrimPrefix(e.Message, "ipc: "))
}

// Unwrap returns the wrapped sentinels.
func (e *RemoteError) Unwrap() []error { return e.errs }

// fromRPC converts an error of a gRPC call to the worker into a typed error. ctx is the call's
// context: a connection that breaks because the context ended reports the context's error.
func fromRPC(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxError(op, ctxErr)
		}
		return fmt.Errorf("ipc: %s: %w: %w", op, ErrWorkerGone, err)
	}
	re := &RemoteError{Op: op, Code: st.Code(), Message: st.Message()}
	for _, reason := range workerReasons(st) {
		if s, ok := reasonSentinels[reason]; ok {
			re.errs = append(re.errs, s)
		}
	}
	switch st.Code() {
	case codes.DeadlineExceeded:
		re.errs = append(re.errs, ErrDeadlineExceeded, context.DeadlineExceeded)
	case codes.Canceled:
		if ctx.Err() != nil || len(re.errs) > 0 {
			re.errs = append(re.errs, ErrCanceled, context.Canceled)
		} else { // the connection was torn down under the call
			re.errs = append(re.errs, ErrWorkerGone)
		}
	case codes.InvalidArgument:
		re.errs = append(re.errs, ErrInvalidArgument)
	case codes.Unavailable:
		if len(re.errs) == 0 { // transport failure: no handler answered
			re.errs = append(re.errs, ErrWorkerGone)
		}
	case codes.FailedPrecondition, codes.ResourceExhausted:
		if len(re.errs) == 0 {
			re.errs = append(re.errs, ErrRemote)
		}
	default:
		if len(re.errs) == 0 {
			re.errs = append(re.errs, ErrRemote)
		}
	}
	return re
}

// workerReasons returns the ErrorInfo reasons in ipcpb.ErrorDomain that st carries: the sentinels a
// worker's handler started from.
func workerReasons(st *status.Status) []string {
	var reasons []string
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ipcpb.ErrorDomain {
			reasons = append(reasons, info.GetReason())
		}
	}
	return reasons
}

// workerSentinelStatus reports a typed worker error: a status a worker's handler returned for a
// sentinel error (an ErrorInfo in ipcpb.ErrorDomain). Such a status is the worker's answer, never a
// broken stream's or connection's.
func workerSentinelStatus(st *status.Status) bool { return len(workerReasons(st)) > 0 }

// ctxError reports a call ended by its context.
func ctxError(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ipc: %s: %w: %w", op, ErrDeadlineExceeded, err)
	}
	return fmt.Errorf("ipc: %s: %w: %w", op, ErrCanceled, err)
}
