package ipc

import (
	"encoding/json"
	"time"
)

// SlotState is where a pool slot is in its life.
type SlotState int

// Slot states.
const (
	// SlotIdle: the pool is not serving yet, or (BootstrapFromPool) the slot waits for another slot
	// to be ready before its first start.
	SlotIdle SlotState = iota
	// SlotStarting: a worker is being launched and configured.
	SlotStarting
	// SlotRunning: the worker is ready and serving calls.
	SlotRunning
	// SlotBackoff: the worker is gone; the slot waits before restarting it (its backoff delay, then,
	// with BootstrapFromPool, for another slot to be ready when none runs).
	SlotBackoff
	// SlotStopping: the pool is stopping the worker.
	SlotStopping
	// SlotStopped: the slot has ended (pool shut down, or its policy does not restart).
	SlotStopped
	// SlotFailed: the slot gave up after too many restarts.
	SlotFailed
)

func (s SlotState) String() string {
	switch s {
	case SlotIdle:
		return "idle"
	case SlotStarting:
		return "starting"
	case SlotRunning:
		return "running"
	case SlotBackoff:
		return "backoff"
	case SlotStopping:
		return "stopping"
	case SlotStopped:
		return "stopped"
	case SlotFailed:
		return "failed"
	default:
		return "unknown"
	}
}

// MarshalJSON writes the state's name.
func (s SlotState) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// SlotStatus is a snapshot of one slot.
type SlotStatus struct {
	Name  string    `json:"name"`
	Index int       `json:"index"`
	State SlotState `json:"state"`
	// Since is when the slot entered State.
	Since time.Time `json:"since"`
	// PID of the current worker (0 when none).
	PID    int      `json:"pid"`
	PeerID string   `json:"peer_id,omitempty"`
	Maddrs []string `json:"maddrs,omitempty"`
	// Restarts counts restarts since the pool started.
	Restarts   int       `json:"restarts"`
	LastExit   string    `json:"last_exit,omitempty"`
	LastExitAt time.Time `json:"last_exit_at,omitzero"`
	// Error is the reason a failed slot gave up.
	Error string `json:"error,omitempty"`
	// Alone (BootstrapFromPool): the running worker started with no other slot to bootstrap from
	// and has not joined another slot's swarm yet; it is handed their multiaddrs (AddPeers) as soon
	// as one runs.
	Alone bool `json:"alone,omitempty"`
	// The worker's figures from the last health check (Client.Stats), taken at StatsAt; they stay
	// those of the last worker while the slot restarts.
	RoutingTableSize int       `json:"routing_table_size"`
	StoredKeys       int       `json:"stored_keys"`
	ConnectedPeers   int       `json:"connected_peers"`
	StatsAt          time.Time `json:"stats_at,omitzero"`
	CachedKeys       int       `json:"cached_keys"`
	PersistedRecords int       `json:"persisted_records"`
	RSSBytes         uint64    `json:"rss_bytes"`
	HeapBytes        uint64    `json:"heap_bytes"`
	Goroutines       int       `json:"goroutines"`
	// StatsPID is the process the figures come from (the current worker's PID while it runs).
	StatsPID int `json:"stats_pid,omitempty"`
	// Ops counts the calls made to the worker, per kind, since it started.
	Ops []OpStats `json:"ops,omitempty"`
	// RPCs counts the worker's DHT RPCs, per kind, since it started.
	RPCs []RPCStats `json:"rpcs,omitempty"`
	// Peers are the worker's connected peers and DHT contacts.
	Peers []PeerStatus `json:"peers,omitempty"`
	// NAT is the worker's reachability and relays (zero before the first health check).
	NAT NATStatus `json:"nat"`
}

// Status is a snapshot of a pool.
type Status struct {
	Slots []SlotStatus `json:"slots"`
}

// StopReport tells how each slot's last worker ended when the pool stopped.
type StopReport struct {
	Slots []SlotStop `json:"slots"`
}

// SlotStop is one slot's line of a StopReport.
type SlotStop struct {
	Name   string     `json:"name"`
	PID    int        `json:"pid"`
	Method StopMethod `json:"method"`
}

// Killed lists the workers that did not stop gracefully (SIGKILL or unreaped).
func (r StopReport) Killed() []SlotStop {
	var out []SlotStop
	for _, s := range r.Slots {
		if s.Method >= StoppedKilled {
			out = append(out, s)
		}
	}
	return out
}
