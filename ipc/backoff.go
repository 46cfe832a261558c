package ipc

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults of the restart policy.
const (
	DefaultBackoffInitial    = 500 * time.Millisecond
	DefaultBackoffMax        = 30 * time.Second
	DefaultBackoffMultiplier = 2.0
	DefaultBackoffJitter     = 0.2
	DefaultBackoffReset      = 60 * time.Second
	DefaultMaxRestarts       = 5
	DefaultIntensityPeriod   = 60 * time.Second
)

// BackoffConfig shapes the delay before a restart: Initial × Multiplier^(n-1) for the n-th
// consecutive failure, capped at Max, then spread by ±Jitter (a fraction). A worker that ran for
// ResetAfter starts the count again. Zero fields take the defaults; a negative Jitter means none.
type BackoffConfig struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
	ResetAfter time.Duration
}

func (c BackoffConfig) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: Backoff.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.Initial < 0 {
		bad("Initial", "negative (%v)", c.Initial)
	}
	if c.Max < 0 {
		bad("Max", "negative (%v)", c.Max)
	}
	if c.Initial > 0 && c.Max > 0 && c.Max < c.Initial {
		bad("Max", "%v is below Initial %v", c.Max, c.Initial)
	}
	if math.IsNaN(c.Multiplier) || math.IsInf(c.Multiplier, 0) || c.Multiplier < 0 || (c.Multiplier > 0 && c.Multiplier < 1) {
		bad("Multiplier", "must be 0 (default) or a finite number >= 1, got %v", c.Multiplier)
	}
	if math.IsNaN(c.Jitter) || c.Jitter >= 1 {
		bad("Jitter", "must be below 1, got %v", c.Jitter)
	}
	if c.ResetAfter < 0 {
		bad("ResetAfter", "negative (%v)", c.ResetAfter)
	}
	return errors.Join(errs...)
}

func (c BackoffConfig) withDefaults() BackoffConfig {
	if c.Initial == 0 {
		c.Initial = DefaultBackoffInitial
	}
	if c.Max == 0 {
		c.Max = max(DefaultBackoffMax, c.Initial)
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultBackoffMultiplier
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = DefaultBackoffJitter
	case c.Jitter < 0:
		c.Jitter = 0
	}
	if c.ResetAfter == 0 {
		c.ResetAfter = DefaultBackoffReset
	}
	return c
}

// delay returns the delay before the restart that follows the n-th consecutive failure (n >= 1);
// rnd is a uniform number in [0, 1).
func (c BackoffConfig) delay(n int, rnd float64) time.Duration {
	d := float64(c.Initial) * math.Pow(c.Multiplier, float64(max(n-1, 0)))
	d = min(d, float64(c.Max))
	d *= 1 + c.Jitter*(2*rnd-1)
	return time.Duration(d)
}

// randFloat is the jitter source.
func randFloat() float64 { return rand.Float64() }

// IntensityConfig is the restart intensity: at most MaxRestarts restarts within Period, after which
// the slot (or the pool, see GiveUpScope) gives up. Zero fields take the defaults; a negative
// MaxRestarts means no limit.
type IntensityConfig struct {
	MaxRestarts int
	Period      time.Duration
}

func (c IntensityConfig) validate() error {
	if c.Period < 0 {
		return fmt.Errorf("%w: Intensity.Period: negative (%v)", ErrInvalidConfig, c.Period)
	}
	return nil
}

func (c IntensityConfig) withDefaults() IntensityConfig {
	if c.MaxRestarts == 0 {
		c.MaxRestarts = DefaultMaxRestarts
	}
	if c.Period == 0 {
		c.Period = DefaultIntensityPeriod
	}
	return c
}

// intensity tracks the restarts of one slot within the window.
type intensity struct {
	cfg      IntensityConfig
	restarts []time.Time
}

// allow records a restart at now and reports whether it is within the intensity.
func (in *intensity) allow(now time.Time) bool {
	if in.cfg.MaxRestarts < 0 {
		return true
	}
	cut := now.Add(-in.cfg.Period)
	kept := in.restarts[:0]
	for _, t := range in.restarts {
		if t.After(cut) {
			kept = append(kept, t)
		}
	}
	in.restarts = kept
	if len(in.restarts) >= in.cfg.MaxRestarts {
		return false
	}
	in.restarts = append(in.restarts, now)
	return true
}
