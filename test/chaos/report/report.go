// Package report carries the reliability table's rows from the suites that measure them
// (test/chaos, test/hostile) to scripts/reliability, which prints the table.
//
// A suite builds one Row per scenario from what the run measured and calls Record: the row is
// always returned as text for the test log and, when HIVEMIND_RELIABILITY_OUT names a file, appended
// to it as one tab-separated line (O_APPEND: suites running in parallel never interleave a line).
package report

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// EnvOut names the file rows are appended to; unset, rows only go to the test log.
const EnvOut = "HIVEMIND_RELIABILITY_OUT"

// Row is one scenario's line of the reliability table. Every number comes from the run.
type Row struct {
	// Scenario names the scenario ("chaos/kill-9", "hostile/oversized-length", ...).
	Scenario string
	// Runs counts the faults injected (kills, stops, attacks, partitions).
	Runs int
	// Calls counts the calls made by the load and the checks during the scenario.
	Calls int
	// FailedAsExpected counts calls that failed with a typed error (errors.Is an ipc or dht sentinel),
	// or attacks that got their clear rejection.
	FailedAsExpected int
	// Hung counts calls that outlived their deadline plus the margin (must be 0).
	Hung int
	// Unclear counts calls that failed without a typed error, or attacks that got no clear rejection
	// (must be 0).
	Unclear int
	// Lost counts acknowledged records that could not be read back (must be 0).
	Lost int
	// Restarts counts worker restarts.
	Restarts int
	// WorstRecovery is the longest time from a fault to full health (0: no recovery measured).
	WorstRecovery time.Duration
	// PeakMemory is the peak memory in bytes: a worker's peak RSS (VmHWM) for process scenarios, the
	// Go heap in use of the test process that hosts the attacked node (hostile peers) or the
	// simulated nodes, always measured by HeapSampler.
	PeakMemory uint64
	// MemoryKind says which: "rss" or "heap".
	MemoryKind string
	// Notes is free text (seed, sentinels seen, ...); no tabs or newlines.
	Notes string
}

// OK reports whether the row meets the hard requirements: nothing hung, nothing lost, no untyped
// failure.
func (r Row) OK() bool { return r.Hung == 0 && r.Lost == 0 && r.Unclear == 0 }

// TSV is the row as one line of tab-separated fields (durations in milliseconds, memory in bytes).
func (r Row) TSV() string {
	clean := func(s string) string { return strings.NewReplacer("\t", " ", "\n", " ").Replace(s) }
	return fmt.Sprintf("%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n",
		clean(r.Scenario), r.Runs, r.Calls, r.FailedAsExpected, r.Hung, r.Unclear, r.Lost, r.Restarts,
		r.WorstRecovery.Milliseconds(), r.PeakMemory, clean(r.MemoryKind), clean(r.Notes))
}

// String is the row in one human-readable line.
func (r Row) String() string {
	return fmt.Sprintf("%s: runs=%d calls=%d failed-as-expected=%d hung=%d unclear=%d lost=%d restarts=%d worst-recovery=%v peak-%s=%.1fMiB %s",
		r.Scenario, r.Runs, r.Calls, r.FailedAsExpected, r.Hung, r.Unclear, r.Lost, r.Restarts,
		r.WorstRecovery.Round(time.Millisecond), r.MemoryKind, float64(r.PeakMemory)/(1<<20), r.Notes)
}

// Record appends r to the file named by HIVEMIND_RELIABILITY_OUT, when set, and returns its text.
func Record(r Row) (string, error) {
	path := os.Getenv(EnvOut)
	if path == "" {
		return r.String(), nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return r.String(), fmt.Errorf("report: %w", err)
	}
	_, werr := f.WriteString(r.TSV())
	cerr := f.Close()
	if werr != nil {
		return r.String(), fmt.Errorf("report: %w", werr)
	}
	if cerr != nil {
		return r.String(), fmt.Errorf("report: %w", cerr)
	}
	return r.String(), nil
}
