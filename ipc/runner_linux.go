package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/hashicorp/go-plugin/runner"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// execRunner is go-plugin's runner.Runner for a worker process that cannot outlive its parent
// (DESIGN.md §4.5): the fork happens on a goroutine locked to its OS thread, which stays alive,
// waiting, as long as the worker (Pdeathsig is tied to the forking thread, golang/go#27505); the child
// gets Pdeathsig SIGKILL, the launcher's pid to compare with getppid(), and the read end of a lifeline
// pipe whose write end only this process holds.
//
// stdout and stderr are os.Pipes of our own (not exec's), so reaping the process never closes them
// under go-plugin's readers; they are closed in Wait, which go-plugin calls after both hit EOF.
type execRunner struct {
	cmd  *exec.Cmd
	name string

	stdoutR, stderrR *os.File
	lifeline         *os.File // write end; closed when the worker exits

	pid     int
	done    chan struct{}
	exitErr error // set before done is closed

	mu          sync.Mutex // guards proc and killPending: Kill may race with Start
	proc        *os.Process
	killPending bool

	closeOnce sync.Once
}

var _ runner.Runner = (*execRunner)(nil)

// newExecRunner prepares cmd (as go-plugin populated it: environment only) to run path with args.
func newExecRunner(cmd *exec.Cmd, path string, args []string, env []string, slot string) *execRunner {
	cmd.Path = path
	cmd.Args = append([]string{path}, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Env = append(cmd.Env, ipcpb.EnvSlot+"="+slot)
	cmd.Stdin = nil // /dev/null: a worker never reads the terminal
	return &execRunner{cmd: cmd, name: path, done: make(chan struct{})}
}

// Start forks and execs the worker on a locked OS thread and returns once the process exists.
func (r *execRunner) Start(context.Context) error {
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (rd, wr *os.File, err error) {
		rd, wr, err = os.Pipe()
		if err == nil {
			files = append(files, rd, wr)
		}
		return rd, wr, err
	}
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		return err
	}
	stderrR, stderrW, err := pipe()
	if err != nil {
		closeAll()
		return err
	}
	lifeR, lifeW, err := pipe()
	if err != nil {
		closeAll()
		return err
	}
	r.cmd.Stdout, r.cmd.Stderr = stdoutW, stderrW
	r.cmd.ExtraFiles = []*os.File{lifeR} // fd 3 in the child
	r.cmd.Env = append(r.cmd.Env,
		ipcpb.EnvLifelineFD+"=3",
		ipcpb.EnvParentPID+"="+strconv.Itoa(os.Getpid()),
	)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, after the worker has been reaped.
		runtime.LockOSThread()
		if err := r.cmd.Start(); err != nil {
			started <- err
			return
		}
		r.mu.Lock()
		r.proc = r.cmd.Process
		if r.killPending {
			_ = r.proc.Kill()
		}
		r.mu.Unlock()
		started <- nil
		err := r.cmd.Wait()
		r.exitErr = exitReason(err)
		_ = lifeW.Close()
		close(r.done)
	}()
	err = <-started
	// The child has its copies; the parent keeps only the read ends and the lifeline's write end.
	_ = stdoutW.Close()
	_ = stderrW.Close()
	_ = lifeR.Close()
	if err != nil {
		_ = stdoutR.Close()
		_ = stderrR.Close()
		_ = lifeW.Close()
		return fmt.Errorf("ipc: exec %s: %w", r.name, err)
	}
	r.stdoutR, r.stderrR, r.lifeline = stdoutR, stderrR, lifeW
	r.pid = r.cmd.Process.Pid
	return nil
}

// exitReason turns exec's error into the reason reported for the exit: nil for status 0.
func exitReason(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("signal: %s", ws.Signal())
		}
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return err
}

// Wait blocks until the worker has exited and then closes the read ends of its stdout and stderr.
func (r *execRunner) Wait(context.Context) error {
	<-r.done
	r.closeOnce.Do(func() {
		_ = r.stdoutR.Close()
		_ = r.stderrR.Close()
	})
	return r.exitErr
}

// Kill sends SIGKILL unless the worker already exited; it does not wait.
func (r *execRunner) Kill(context.Context) error {
	return r.signal(syscall.SIGKILL)
}

func (r *execRunner) signal(sig syscall.Signal) error {
	select {
	case <-r.done:
		return os.ErrProcessDone
	default:
	}
	r.mu.Lock()
	proc := r.proc
	if proc == nil { // not forked yet: a kill is applied right after the fork
		if sig == syscall.SIGKILL {
			r.killPending = true
		}
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	err := proc.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return os.ErrProcessDone
	}
	return err
}

func (r *execRunner) Stdout() io.ReadCloser { return r.stdoutR }
func (r *execRunner) Stderr() io.ReadCloser { return r.stderrR }
func (r *execRunner) Name() string          { return r.name }
func (r *execRunner) ID() string            { return strconv.Itoa(r.pid) }

// Diagnose explains the usual reasons of a failed handshake.
func (r *execRunner) Diagnose(context.Context) string {
	return fmt.Sprintf("worker %s printed no go-plugin handshake: is worker.Main() called first thing in "+
		"its main, and does anything else write to stdout?", r.name)
}

func (r *execRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}
func (r *execRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
