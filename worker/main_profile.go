package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// EnvProfileDir, set in a worker's environment, makes the worker profile its whole life: a CPU
// profile and a block profile (every blocking event of a microsecond or more, a sample of the
// shorter ones), written as cpu-<pid>.pprof and block-<pid>.pprof in that directory when it stops
// by itself (Shutdown RPC, SIGTERM, parent gone). supervisor bench --worker-profiles sets it.
const EnvProfileDir = "HIVEMIND_WORKER_PROFILE_DIR"

// blockProfileRate is the block profile's sampling rate in nanoseconds blocked.
const blockProfileRate = 1000

// startProfiles starts the profiles EnvProfileDir asks for; the returned function writes them. A
// profile that cannot be written is logged, never fatal: profiling is for measurements.
func startProfiles(dir string, logger *slog.Logger) (stop func()) {
	if dir == "" {
		return func() {}
	}
	pid := os.Getpid()
	cpu, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", pid)))
	if err == nil {
		if err = pprof.StartCPUProfile(cpu); err != nil {
			err = errors.Join(err, cpu.Close())
			cpu = nil
		}
	}
	if err != nil {
		logger.Warn("no CPU profile", "dir", dir, "error", err)
	}
	runtime.SetBlockProfileRate(blockProfileRate)
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				logger.Warn("CPU profile", "error", err)
			}
		}
		if err := writeProfile(filepath.Join(dir, fmt.Sprintf("block-%d.pprof", pid)), "block"); err != nil {
			logger.Warn("block profile", "error", err)
		}
	}
}

// writeProfile writes the named runtime profile to path.
func writeProfile(path, name string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup(name).WriteTo(f, 0), f.Close())
}
