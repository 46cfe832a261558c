package ipc

import (
	"fmt"
	"time"
)

// Event is one transition of a pool slot, delivered to PoolConfig.EventHook. The concrete types are
// EventStarting, EventReady, EventStartFailed, EventUnhealthy, EventExited, EventBackoff,
// EventGaveUp and EventStopped; switch on them.
//
// Ordering: the slot publishes a transition before it emits the event, so Pool.Status read after
// the event was delivered (in the hook, or by a goroutine the hook handed the event to) shows at
// least that transition: EventStarting in SlotStarting, EventReady in SlotRunning, EventExited and
// EventStartFailed with LastExit set and no worker, EventBackoff in SlotBackoff, EventGaveUp in
// SlotFailed with Error set, EventStopped in SlotStopped. Status may show later transitions too.
type Event interface {
	// Slot is the slot's name; Index its position in the pool.
	Slot() string
	Index() int
	// Time is when the transition happened (the pool's clock).
	Time() time.Time
	String() string
	isEvent()
}

// EventHeader is common to every event.
type EventHeader struct {
	SlotName  string
	SlotIndex int
	At        time.Time
}

func (h EventHeader) Slot() string    { return h.SlotName }
func (h EventHeader) Index() int      { return h.SlotIndex }
func (h EventHeader) Time() time.Time { return h.At }
func (EventHeader) isEvent()          {}

// EventStarting: a worker is being launched for the slot.
type EventStarting struct {
	EventHeader
	// Attempt counts launches of this slot, from 1.
	Attempt int
	// InitialPeers the worker was given.
	InitialPeers []string
}

func (e EventStarting) String() string {
	return fmt.Sprintf("%s: starting (attempt %d)", e.SlotName, e.Attempt)
}

// EventReady: the slot's worker is configured and its node ready.
type EventReady struct {
	EventHeader
	PID             int
	PeerID          PeerID
	Maddrs          []string
	StartDuration   time.Duration
	ReloadedRecords int
}

func (e EventReady) String() string {
	return fmt.Sprintf("%s: ready (pid %d, peer %s, %v)", e.SlotName, e.PID, e.PeerID, e.StartDuration.Round(time.Millisecond))
}

// EventStartFailed: launching or configuring the worker failed.
type EventStartFailed struct {
	EventHeader
	Err error
}

func (e EventStartFailed) String() string {
	return fmt.Sprintf("%s: start failed: %v", e.SlotName, e.Err)
}

// EventUnhealthy: a health check failed. When Killed, this was the last allowed failure and the
// worker was killed (an EventExited follows).
type EventUnhealthy struct {
	EventHeader
	PID      int
	Err      error
	Failures int
	Killed   bool
}

func (e EventUnhealthy) String() string {
	s := fmt.Sprintf("%s: health check %d failed (pid %d): %v", e.SlotName, e.Failures, e.PID, e.Err)
	if e.Killed {
		s += "; killed"
	}
	return s
}

// EventExited: the slot's worker process ended on its own or was killed as unhealthy.
type EventExited struct {
	EventHeader
	PID int
	// Reason is nil for a clean exit (status 0).
	Reason error
	Uptime time.Duration
}

func (e EventExited) String() string {
	reason := "clean exit"
	if e.Reason != nil {
		reason = e.Reason.Error()
	}
	return fmt.Sprintf("%s: worker %d exited after %v: %s", e.SlotName, e.PID, e.Uptime.Round(time.Millisecond), reason)
}

// EventBackoff: the slot waits Delay before restarting.
type EventBackoff struct {
	EventHeader
	Delay time.Duration
	// Restarts is the number of restarts of this slot so far, this one included.
	Restarts int
}

func (e EventBackoff) String() string {
	return fmt.Sprintf("%s: restart %d in %v", e.SlotName, e.Restarts, e.Delay.Round(time.Millisecond))
}

// EventGaveUp: the slot exceeded its restart intensity (Err is a *GaveUpError) and stopped.
type EventGaveUp struct {
	EventHeader
	Err error
}

func (e EventGaveUp) String() string { return e.Err.Error() }

// EventStopped: the slot's worker was stopped by the pool's shutdown (or the slot's policy let it
// stay down).
type EventStopped struct {
	EventHeader
	PID    int
	Method StopMethod
}

func (e EventStopped) String() string {
	return fmt.Sprintf("%s: stopped (pid %d, %s)", e.SlotName, e.PID, e.Method)
}

// GaveUpError is the error of a slot that exceeded its restart intensity: it names the slot and its
// last exit reasons, and wraps ErrGaveUp and the last reason.
type GaveUpError struct {
	Slot        string
	MaxRestarts int
	Period      time.Duration
	// Reasons are the last exit or start-failure reasons, oldest first.
	Reasons []string
	last    error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("ipc: slot %s gave up after %d restarts in %v; last exits: %q",
		e.Slot, e.MaxRestarts, e.Period, e.Reasons)
}

// Unwrap returns ErrGaveUp and the last reason.
func (e *GaveUpError) Unwrap() []error {
	if e.last == nil {
		return []error{ErrGaveUp}
	}
	return []error{ErrGaveUp, e.last}
}
