package albert

import (
	"fmt"
	"math"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// DefaultRunID is albert's default run id (the prefix of every key of a run).
const DefaultRunID = "albert"

// MetricsKey is the DHT key trainers store their LocalMetrics under: "<runID>_metrics".
func MetricsKey(runID string) dht.Key { return dht.MustKey(runID + "_metrics") }

// ProgressKey is the DHT key of a run's training progress: "<runID>_progress".
func ProgressKey(runID string) dht.Key { return dht.MustKey(runID + "_progress") }

// LocalMetrics is albert's utils.LocalMetrics: what a trainer reports once per epoch.
type LocalMetrics struct {
	// Step is the trainer's local epoch (StrictInt ≥ 0).
	Step int64
	// SamplesPerSecond is the trainer's measured throughput (StrictFloat ≥ 0).
	SamplesPerSecond float64
	// SamplesAccumulated is the number of samples the trainer contributed to the epoch it just
	// finished (StrictInt ≥ 0).
	SamplesAccumulated int64
	// Loss is the sum of the mini-step losses since the previous report (StrictFloat).
	Loss float64
	// MiniSteps is the number of mini-steps summed in Loss (StrictInt ≥ 0).
	MiniSteps int64
}

// Value returns the metrics as the map hivemind stores (LocalMetrics.dict()): keys in field order,
// ints as msgpack ints and floats as float64 even when integral, so the bytes equal Python's and the
// record passes the strict schema.
func (m LocalMetrics) Value() *msgpack.Map {
	return msgpack.MapOf(
		"step", m.Step,
		"samples_per_second", m.SamplesPerSecond,
		"samples_accumulated", m.SamplesAccumulated,
		"loss", m.Loss,
		"mini_steps", m.MiniSteps,
	)
}

// Validate checks the schema's bounds (a record breaking them would be rejected by every peer).
func (m LocalMetrics) Validate() error {
	switch {
	case m.Step < 0:
		return fmt.Errorf("%w: step %d < 0", ErrBadRecord, m.Step)
	case !(m.SamplesPerSecond >= 0): // NaN too
		return fmt.Errorf("%w: samples_per_second %v", ErrBadRecord, m.SamplesPerSecond)
	case m.SamplesAccumulated < 0:
		return fmt.Errorf("%w: samples_accumulated %d < 0", ErrBadRecord, m.SamplesAccumulated)
	case m.MiniSteps < 0:
		return fmt.Errorf("%w: mini_steps %d < 0", ErrBadRecord, m.MiniSteps)
	}
	return nil
}

// ParseLocalMetrics decodes a metrics value (msgpack) like pydantic's LocalMetrics.parse_obj on a
// strict model: every field must be present with its exact type; unknown fields are ignored (the
// model's default). Errors wrap ErrBadRecord.
func ParseLocalMetrics(raw []byte) (LocalMetrics, error) {
	f, err := decodeFields(raw)
	if err != nil {
		return LocalMetrics{}, err
	}
	var m LocalMetrics
	if m.Step, err = f.int("step"); err != nil {
		return LocalMetrics{}, err
	}
	if m.SamplesPerSecond, err = f.float("samples_per_second"); err != nil {
		return LocalMetrics{}, err
	}
	if m.SamplesAccumulated, err = f.int("samples_accumulated"); err != nil {
		return LocalMetrics{}, err
	}
	if m.Loss, err = f.float("loss"); err != nil {
		return LocalMetrics{}, err
	}
	if m.MiniSteps, err = f.int("mini_steps"); err != nil {
		return LocalMetrics{}, err
	}
	return m, m.Validate()
}

// LocalProgress is hivemind's LocalTrainingProgress: what a Tracker reports about its peer.
type LocalProgress struct {
	// PeerID is the peer's raw libp2p peer ID (bytes).
	PeerID []byte
	// Epoch is the peer's local epoch (StrictInt ≥ 0).
	Epoch int64
	// SamplesAccumulated counts the samples accumulated in Epoch (StrictInt ≥ 0).
	SamplesAccumulated int64
	// SamplesPerSecond is the peer's performance EMA (StrictFloat ≥ 0).
	SamplesPerSecond float64
	// Time is the DHT time of the report (StrictFloat).
	Time float64
	// ClientMode is set for peers that do not count towards the global epoch (StrictBool).
	ClientMode bool
}

// Value returns the progress as the map hivemind stores (LocalTrainingProgress.dict()).
func (p LocalProgress) Value() *msgpack.Map {
	return msgpack.MapOf(
		"peer_id", append([]byte{}, p.PeerID...),
		"epoch", p.Epoch,
		"samples_accumulated", p.SamplesAccumulated,
		"samples_per_second", p.SamplesPerSecond,
		"time", p.Time,
		"client_mode", p.ClientMode,
	)
}

// ParseLocalProgress decodes a progress value. A None value (a tombstone left by a stopped tracker)
// gives (nil, nil). Errors wrap ErrBadRecord.
func ParseLocalProgress(raw []byte) (*LocalProgress, error) {
	v, err := msgpack.Unmarshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if v == nil {
		return nil, nil
	}
	f, err := fieldsOf(v)
	if err != nil {
		return nil, err
	}
	p := &LocalProgress{}
	if p.PeerID, err = f.bytes("peer_id"); err != nil {
		return nil, err
	}
	if p.Epoch, err = f.int("epoch"); err != nil {
		return nil, err
	}
	if p.SamplesAccumulated, err = f.int("samples_accumulated"); err != nil {
		return nil, err
	}
	if p.SamplesPerSecond, err = f.float("samples_per_second"); err != nil {
		return nil, err
	}
	if p.Time, err = f.float("time"); err != nil {
		return nil, err
	}
	if p.ClientMode, err = f.bool("client_mode"); err != nil {
		return nil, err
	}
	switch {
	case p.Epoch < 0, p.SamplesAccumulated < 0, !(p.SamplesPerSecond >= 0), math.IsNaN(p.Time):
		return nil, fmt.Errorf("%w: progress out of bounds: %+v", ErrBadRecord, *p)
	}
	return p, nil
}

// fields is a decoded record map with strictly typed accessors.
type fields struct{ m *msgpack.Map }

func decodeFields(raw []byte) (fields, error) {
	v, err := msgpack.Unmarshal(raw)
	if err != nil {
		return fields{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	return fieldsOf(v)
}

func fieldsOf(v any) (fields, error) {
	m, ok := v.(*msgpack.Map)
	if !ok {
		return fields{}, fmt.Errorf("%w: a %T, not a map", ErrBadRecord, v)
	}
	return fields{m: m}, nil
}

func (f fields) get(name string) (any, error) {
	v, ok := f.m.Get(name)
	if !ok {
		return nil, fmt.Errorf("%w: field %q missing", ErrBadRecord, name)
	}
	return v, nil
}

// int accepts a msgpack int only (never a bool or a float: the schema's StrictInt).
func (f fields) int(name string) (int64, error) {
	v, err := f.get(name)
	if err != nil {
		return 0, err
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case uint64:
		return 0, fmt.Errorf("%w: field %q: %d does not fit an int64", ErrBadRecord, name, x)
	}
	return 0, fmt.Errorf("%w: field %q: a %T, not an int", ErrBadRecord, name, v)
}

// float accepts a msgpack float only (never an int: the schema's StrictFloat).
func (f fields) float(name string) (float64, error) {
	v, err := f.get(name)
	if err != nil {
		return 0, err
	}
	if x, ok := v.(float64); ok {
		return x, nil
	}
	return 0, fmt.Errorf("%w: field %q: a %T, not a float", ErrBadRecord, name, v)
}

func (f fields) bool(name string) (bool, error) {
	v, err := f.get(name)
	if err != nil {
		return false, err
	}
	if x, ok := v.(bool); ok {
		return x, nil
	}
	return false, fmt.Errorf("%w: field %q: a %T, not a bool", ErrBadRecord, name, v)
}

func (f fields) bytes(name string) ([]byte, error) {
	v, err := f.get(name)
	if err != nil {
		return nil, err
	}
	if x, ok := v.([]byte); ok {
		return x, nil
	}
	return nil, fmt.Errorf("%w: field %q: a %T, not bytes", ErrBadRecord, name, v)
}
