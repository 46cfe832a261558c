package worker

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// watchParent makes sure this worker does not outlive its launcher (DESIGN.md §4.5): the kernel
// kills it when the launcher's forking thread dies (PR_SET_PDEATHSIG, set again here for workers
// started without it), it refuses to start when its parent is already not the launcher, and the
// returned channel reports EOF on the lifeline pipe. Without the launcher's environment variables
// (a worker started by hand through go-plugin) only the death signal is set.
func watchParent() (<-chan error, error) {
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", err)
	}
	if s := os.Getenv(ipcpb.EnvParentPID); s != "" {
		want, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %w", ipcpb.EnvParentPID, s, err)
		}
		if got := os.Getppid(); got != want {
			return nil, fmt.Errorf("%w: parent pid is %d, launcher was %d", ErrParentGone, got, want)
		}
	}
	out := make(chan error, 1)
	if s := os.Getenv(ipcpb.EnvLifelineFD); s != "" {
		fd, err := strconv.Atoi(s)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("%s=%q: not a file descriptor", ipcpb.EnvLifelineFD, s)
		}
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "lifeline")
		if f == nil {
			return nil, fmt.Errorf("%s=%d: invalid file descriptor", ipcpb.EnvLifelineFD, fd)
		}
		go watchLifeline(f, out)
	}
	return out, nil
}
