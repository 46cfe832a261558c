package albert

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"slices"

	"github.com/hivemind-go/hivemind/internal/webui"

	"github.com/mr-tron/base58"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/ipc"
)

// maxHistory bounds the steps a monitor remembers for its dashboard (the oldest go first).
const maxHistory = 2000

// StepPoint is the collaboration at one step: the monitor's last summary while that step was the
// latest (trainers report a step at different times; the last read has them all).
type StepPoint struct {
	Step int64 `json:"step"`
	// Loss is the mean mini-step loss (Summary.Loss); nil when no mini-step was reported.
	Loss             *float64 `json:"loss"`
	SamplesPerSecond float64  `json:"samples_per_second"`
	Samples          int64    `json:"samples"`
	AlivePeers       int      `json:"alive_peers"`
	// Time is the DHT time the monitor read it.
	Time float64 `json:"time"`
}

// DashboardPeer is one trainer as the dashboard shows it: its latest metrics and progress report.
type DashboardPeer struct {
	// Owner is the end of the trainer's owner marker (its signing key), enough to tell trainers apart.
	Owner string `json:"owner"`
	// PeerID is the base58 peer ID from its progress report; empty when it has none.
	PeerID string `json:"peer_id,omitempty"`
	// Kind is ipc.PeerGo, ipc.PeerHivemind (a Python peer), ipc.PeerOther or ipc.PeerUnknown, from
	// the agent version its host announced to the monitor's (Agent).
	Kind  string `json:"kind"`
	Agent string `json:"agent,omitempty"`
	// Step, Loss (mean per mini-step; nil without mini-steps), SamplesPerSecond and Samples are
	// its latest metrics.
	Step             int64    `json:"step"`
	Loss             *float64 `json:"loss"`
	SamplesPerSecond float64  `json:"samples_per_second"`
	Samples          int64    `json:"samples"`
	// Epoch, EpochSamples and LastReport (DHT time) come from its latest progress report; nil and
	// zero without one.
	Epoch        *int64  `json:"epoch"`
	EpochSamples int64   `json:"epoch_samples"`
	LastReport   float64 `json:"last_report,omitempty"`
	ClientMode   bool    `json:"client_mode,omitempty"`
}

// Dashboard is what the monitor's dashboard shows: the latest summary, the steps seen, the
// trainers, and the collaboration's progress towards the next epoch.
type Dashboard struct {
	RunID string `json:"run_id"`
	// Now is the DHT time of this snapshot.
	Now float64 `json:"now"`
	// Found: some trainer's metrics were read; the summary fields below are zero before.
	Found            bool     `json:"found"`
	Step             int64    `json:"step"`
	Loss             *float64 `json:"loss"`
	Samples          int64    `json:"samples"`
	SamplesPerSecond float64  `json:"samples_per_second"`
	AlivePeers       int      `json:"alive_peers"`
	// Epoch, EpochSamples and ETA (DHT time; nil while unknown) estimate the collaboration's
	// progress from the trainers' progress reports, as their trackers do (ComputeGlobalProgress).
	Epoch           int64           `json:"epoch"`
	EpochSamples    int64           `json:"epoch_samples"`
	TargetBatchSize int64           `json:"target_batch_size"`
	ETA             *float64        `json:"eta"`
	History         []StepPoint     `json:"history"`
	Peers           []DashboardPeer `json:"peers"`
}

// board is the dashboard's state beyond the latest summary; guarded by Monitor.mu.
type board struct {
	history  []StepPoint
	progress map[string]*LocalProgress // by owner marker; latest reports (tombstones dropped)
	agents   map[string]string         // by base58 peer ID: agent versions the worker's host knows
	global   GlobalProgress
	progRead bool // progress was read at least once
}

// statsClient is a DHT client that also reports its worker's peers (ipc.Client, albert.Node).
type statsClient interface {
	Stats(ctx context.Context) (ipc.Stats, error)
}

// noteStep records a summary in the history: a new point for a new step, else the step's point is
// replaced.
func (m *Monitor) noteStep(s Summary) {
	p := StepPoint{Step: s.Step, Loss: finite(s.Loss), SamplesPerSecond: s.Performance, Samples: s.Samples,
		AlivePeers: s.AlivePeers, Time: m.cfg.Clock.Now()}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.board.history); n > 0 && m.board.history[n-1].Step == s.Step {
		m.board.history[n-1] = p
		return
	}
	m.board.history = append(m.board.history, p)
	if n := len(m.board.history); n > maxHistory {
		m.board.history = slices.Delete(m.board.history, 0, n-maxHistory)
	}
}

// readProgress reads the run's progress reports and the worker's peers for the dashboard; a failed
// read keeps the previous ones (it is logged at debug level).
func (m *Monitor) readProgress(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RPCTimeout)
	defer cancel()
	res, err := m.client.Get(ctx, ProgressKey(m.cfg.RunID), dht.GetOptions{Latest: true})
	if err != nil {
		m.cfg.Logger.Debug("cannot read progress", "error", err)
		return
	}
	reports := map[string]*LocalProgress{}
	var list []*LocalProgress
	found := res != nil && res.IsDictionary
	if found {
		for _, e := range res.Dictionary {
			p, err := ParseLocalProgress(e.Value)
			owner, ok := subkeyBytes(e.Subkey)
			if err != nil || !ok {
				continue
			}
			list = append(list, p) // a tombstone (nil) counts as hivemind counts it: not at all
			if p != nil {
				reports[string(owner)] = p
			}
		}
	}
	params := ProgressParams{TargetBatchSize: m.cfg.TargetBatchSize}
	global := ComputeGlobalProgress(params, LocalProgress{}, 0, list, found, m.cfg.Clock.Now())
	var agents map[string]string
	if sc, ok := m.client.(statsClient); ok {
		if st, err := sc.Stats(ctx); err == nil {
			agents = make(map[string]string, len(st.Peers))
			for _, p := range st.Peers {
				agents[p.PeerID] = p.Agent
			}
		} else {
			m.cfg.Logger.Debug("cannot read the worker's peers", "error", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.board.progress, m.board.global, m.board.progRead = reports, global, true
	if agents != nil {
		m.board.agents = agents
	}
}

// subkeyBytes decodes a msgpack subkey holding bytes (an owner marker).
func subkeyBytes(raw []byte) ([]byte, bool) {
	v, err := msgpack.Unmarshal(raw)
	b, ok := v.([]byte)
	return b, err == nil && ok
}

// Dashboard returns a snapshot of what the dashboard shows.
func (m *Monitor) Dashboard() Dashboard {
	now := m.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.latest
	d := Dashboard{
		RunID: m.cfg.RunID, Now: now, Found: s.AlivePeers > 0, Step: s.Step, Samples: s.Samples,
		SamplesPerSecond: s.Performance, AlivePeers: s.AlivePeers, TargetBatchSize: m.cfg.TargetBatchSize,
		History: slices.Clone(m.board.history), Peers: []DashboardPeer{},
	}
	if d.Found {
		d.Loss = finite(s.Loss)
	}
	if m.board.progRead {
		g := m.board.global
		d.Epoch, d.EpochSamples, d.ETA = g.Epoch, g.SamplesAccumulated, finite(g.ETA)
	}
	for _, p := range s.Peers {
		dp := DashboardPeer{
			Owner: shortMarker(p.Subkey), Kind: ipc.PeerUnknown, Step: p.Metrics.Step,
			SamplesPerSecond: p.Metrics.SamplesPerSecond, Samples: p.Metrics.SamplesAccumulated,
		}
		if p.Metrics.MiniSteps > 0 {
			dp.Loss = finite(p.Metrics.Loss / float64(p.Metrics.MiniSteps))
		}
		if r, ok := m.board.progress[string(p.Subkey)]; ok {
			dp.PeerID = base58.Encode(r.PeerID)
			epoch := r.Epoch
			dp.Epoch, dp.EpochSamples, dp.LastReport, dp.ClientMode = &epoch, r.SamplesAccumulated, r.Time, r.ClientMode
			dp.Agent = m.board.agents[dp.PeerID]
			dp.Kind = ipc.PeerKindOf(dp.Agent)
		}
		d.Peers = append(d.Peers, dp)
	}
	return d
}

// shortMarker is the end of an owner marker "[owner:ssh-rsa …]": the last characters of the key.
func shortMarker(marker []byte) string {
	m := bytes.TrimSuffix(marker, []byte("]"))
	if len(m) > 10 {
		m = m[len(m)-10:]
	}
	return "…" + string(m)
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// dashboardFiles holds the dashboard's page: HTML, CSS and JS served as they are.
//
//go:embed dashboard
var dashboardFiles embed.FS

// DashboardHandler serves m's dashboard: the page at /, its assets under /assets/, and the data it
// polls at /data (the JSON form of Dashboard).
func DashboardHandler(m *Monitor) http.Handler {
	assets, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := webui.PageMux(assets)
	mux.HandleFunc("GET /data", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(m.Dashboard())
	})
	return mux
}
