package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// envRun marks every process of one swarm: the launcher adds it to the workers' environment, and
// the orphan check looks for it in /proc/*/environ.
const envRun = "HIVEMIND_CHAOS_RUN"

// memInfo is a process's resident memory, from /proc/<pid>/status.
type memInfo struct {
	RSS, HWM uint64 // bytes: current and peak resident set
}

func readMem(pid int) (memInfo, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memInfo{}, err
	}
	defer f.Close()
	var m memInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *uint64
		switch name {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		default:
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err == nil {
			*dst = kb << 10
		}
	}
	return m, sc.Err()
}

// fdCount counts the open file descriptors of pid (0 when it is gone).
func fdCount(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(entries)
}

// processState is the state letter of /proc/<pid>/stat (R, S, T for stopped, Z, ...), 0 when gone.
func processState(pid int) byte {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// isZombieOrGone reports whether pid is a zombie (dead, not reaped) or gone.
func isZombieOrGone(pid int) bool {
	st := processState(pid)
	return st == 0 || st == 'Z' || st == 'X'
}

// hasMark reports whether pid's environment carries envRun=runID.
func hasMark(pid int, runID string) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	want := []byte(envRun + "=" + runID)
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(kv, want) {
			return true
		}
	}
	return false
}

// markedProcesses lists the live (not zombie) processes marked with runID.
func markedProcesses(runID string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if hasMark(pid, runID) && !isZombieOrGone(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// waitNoMarked polls until no live process carries runID's mark, or ctx ends; it returns the
// processes still alive (empty on success) and how long it took.
func waitNoMarked(ctx context.Context, runID string) ([]int, time.Duration) {
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		left := markedProcesses(runID)
		if len(left) == 0 {
			return nil, time.Since(start)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return left, time.Since(start)
		}
	}
}

// signalMarked sends sig to pid only if it still is a process of runID (a stale pid from a status
// snapshot may have been reused).
func signalMarked(pid int, runID string, sig syscall.Signal) error {
	if pid <= 0 || !hasMark(pid, runID) {
		return fmt.Errorf("pid %d is not a worker of run %s", pid, runID)
	}
	return syscall.Kill(pid, sig)
}
