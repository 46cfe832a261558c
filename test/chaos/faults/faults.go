// Package faults is the fault file shared by the chaos suite (test/chaos) and its worker binary
// (test/chaos/faultworker): the test writes <state dir>/faults.json of a slot, the worker reads it
// on every call it serves, so a fault can be switched on and off while the worker runs and survives
// its restarts (the state directory does).
//
// Writes are atomic (temporary file + rename), so a worker never reads half a file. A missing or
// unreadable file means no fault.
package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// FileName is the fault file's name inside a worker's state directory.
const FileName = "faults.json"

// Faults are the fault points of one worker. The zero value injects nothing.
type Faults struct {
	// ExitAtStart makes the node factory exit the process with this code before the node exists (a
	// crash loop when it stays set). 0: no crash.
	ExitAtStart int `json:"exit_at_start,omitempty"`
	// CallDelay delays every Get, GetMany, Store and StoreMany the parent sends (a slow worker); the
	// call still ends when its context does. The health service is not delayed.
	CallDelay time.Duration `json:"call_delay,omitempty"`
	// HandlerDelay delays every DHT RPC this worker serves to its peers (net-fault workers only).
	HandlerDelay time.Duration `json:"handler_delay,omitempty"`
	// LinkDelay is added before every DHT RPC this worker sends (net-fault workers only).
	LinkDelay time.Duration `json:"link_delay,omitempty"`
	// Blocked lists peer IDs (base58) this worker neither calls nor serves: both sides blocking
	// each other is a partition (net-fault workers only). Calls fail at once, like a refused
	// connection.
	Blocked []string `json:"blocked,omitempty"`
}

// IsBlocked reports whether peer (base58) is blocked.
func (f Faults) IsBlocked(peer string) bool { return slices.Contains(f.Blocked, peer) }

// Write stores f as dir's fault file, atomically.
func Write(dir string, f Faults) error {
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+FileName+".tmp*")
	if err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("faults: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, FileName)); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	return nil
}

// Clear removes dir's fault file (a missing file is fine).
func Clear(dir string) error {
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("faults: %w", err)
	}
	return nil
}

// Read returns dir's faults; a missing or unparsable file reads as no fault.
func Read(dir string) Faults {
	var f Faults
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		return Faults{}
	}
	if json.Unmarshal(data, &f) != nil {
		return Faults{}
	}
	return f
}

// Source reads a fault file on demand, re-parsing it only when its inode, modification time or
// size changed. Safe for concurrent use. A Source with an empty dir never injects anything.
type Source struct {
	dir string

	mu    sync.Mutex
	ino   uint64 // every Write renames a new file into place: a new inode
	mtime time.Time
	size  int64
	cur   Faults
}

// NewSource returns a source for dir's fault file.
func NewSource(dir string) *Source { return &Source{dir: dir} }

// Get returns the current faults.
func (s *Source) Get() Faults {
	if s == nil || s.dir == "" {
		return Faults{}
	}
	fi, err := os.Stat(filepath.Join(s.dir, FileName))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.cur, s.ino, s.mtime, s.size = Faults{}, 0, time.Time{}, 0
		return s.cur
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	if ino != s.ino || !fi.ModTime().Equal(s.mtime) || fi.Size() != s.size {
		s.cur, s.ino, s.mtime, s.size = Read(s.dir), ino, fi.ModTime(), fi.Size()
	}
	return s.cur
}
