package ipc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envParentHelper makes the test binary act as a parent process: it starts a pool of two
// re-executed workers, prints "PIDS <pid> <pid>" and waits to be killed.
const envParentHelper = "IPC_TEST_PARENT_HELPER"

func parentHelper() int {
	dir, err := os.MkdirTemp("", "ipc-parent-helper")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	l, err := NewExecLauncher(ExecConfig{Path: os.Args[0], Args: []string{"-test.run=^$"}, Env: []string{"GORACE=atexit_sleep_ms=0", envParentHelper + "="}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartPool(ctx, PoolConfig{
		Workers:  2,
		StateDir: dir,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, l)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var pids []string
	for _, s := range p.Status().Slots {
		pids = append(pids, strconv.Itoa(s.PID))
	}
	fmt.Println("PIDS " + strings.Join(pids, " "))
	<-ctx.Done() // killed long before
	return 0
}

func TestWorkersDieWithTheirParent(t *testing.T) {
	ctx := testCtx(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envParentHelper+"=1", "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "helper output")
	fields := strings.Fields(line)
	require.Len(t, fields, 3, "helper printed %q", line)
	var pids []int
	for _, f := range fields[1:] {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		require.True(t, processExists(pid))
		pids = append(pids, pid)
	}

	killedAt := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	// Target: gone within 1 s. The bound here is generous (loaded CI machines); the time is logged.
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	waitForCondition(bctx, t, "workers to die with their parent", func() bool {
		for _, pid := range pids {
			if processExists(pid) {
				return false
			}
		}
		return true
	})
	t.Logf("workers gone %v after the parent's SIGKILL", time.Since(killedAt))
}
