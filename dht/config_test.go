package dht

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string // each must be named in the error; none means valid
	}{
		{name: "zero is valid"},
		{name: "disabled features are valid", cfg: Config{RefreshInterval: -1, CacheNearest: -1, BlacklistTime: -1,
			CacheRefreshBeforeExpiry: -1, MaxStorageEntries: -1, MaxStorageBytes: -1, MaxExpirationHorizon: -1}},
		{name: "negative counts", cfg: Config{BucketSize: -1, NumReplicas: -2, NumWorkers: -3, ChunkSize: -4},
			fields: []string{"BucketSize", "NumReplicas", "NumWorkers", "ChunkSize"}},
		{name: "negative timeouts", cfg: Config{WaitTimeout: -time.Second, BootstrapTimeout: -time.Second},
			fields: []string{"WaitTimeout", "BootstrapTimeout"}},
		{name: "NaN backoff", cfg: Config{BackoffRate: math.NaN()}, fields: []string{"BackoffRate"}},
		{name: "shrinking backoff", cfg: Config{BackoffRate: 0.5}, fields: []string{"BackoffRate"}},
		{name: "tiny refresh", cfg: Config{RefreshInterval: time.Microsecond}, fields: []string{"RefreshInterval"}},
		{name: "expiration horizon in the wrong unit", cfg: Config{MaxExpirationHorizon: 7 * 24}, fields: []string{"MaxExpirationHorizon"}},
		{name: "expiration horizon under the clock discrepancy", cfg: Config{MaxExpirationHorizon: 2 * time.Second},
			fields: []string{"MaxExpirationHorizon"}},
		{name: "bad initial peers", cfg: Config{InitialPeers: []PeerID{"a", "", "a"}}, fields: []string{"entry 1 is empty", "entry 2 repeats"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, errConfig) {
				t.Fatalf("Validate: %v", err)
			}
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	in := Config{InitialPeers: []PeerID{"a"}}
	got := in.withDefaults()
	in.InitialPeers[0] = "changed"
	if got.InitialPeers[0] != "a" {
		t.Error("withDefaults shares the caller's InitialPeers")
	}
	want := Config{
		BucketSize: 20, NumReplicas: 5, DepthModulo: 5, WaitTimeout: 3 * time.Second, BootstrapTimeout: 3 * time.Second,
		RefreshInterval: time.Minute, CacheNearest: 1, CacheRefreshBeforeExpiry: 5 * time.Second, NumWorkers: 4,
		ChunkSize: 16, BlacklistTime: 5 * time.Second, BackoffRate: 2,
	}
	if got.BucketSize != want.BucketSize || got.NumReplicas != want.NumReplicas || got.DepthModulo != want.DepthModulo ||
		got.WaitTimeout != want.WaitTimeout || got.BootstrapTimeout != want.BootstrapTimeout ||
		got.RefreshInterval != want.RefreshInterval || got.CacheNearest != want.CacheNearest ||
		got.CacheRefreshBeforeExpiry != want.CacheRefreshBeforeExpiry || got.NumWorkers != want.NumWorkers ||
		got.ChunkSize != want.ChunkSize || got.BlacklistTime != want.BlacklistTime || got.BackoffRate != want.BackoffRate ||
		got.MaxExpirationHorizon != 7*24*time.Hour || got.ParallelRPC != 0 || got.Clock == nil || got.Logger == nil {
		t.Errorf("defaults = %+v", got)
	}
}

// TestBlacklistBackoff: bans grow by BackoffRate per consecutive failure, a banned peer's failures
// do not count, and a success resets everything (spec §2.8).
func TestBlacklistBackoff(t *testing.T) {
	b := newBlacklist(5, 2)
	now := 1000.0
	var bans []float64
	for range 4 {
		b.registerFailure("p", now)
		if b.registerFailure("p", now); !b.isBanned("p", now) { // counted once while banned
			t.Fatal("not banned")
		}
		bans = append(bans, b.banned["p"]-now)
		now = b.banned["p"] + 0.001 // the ban ran out
		if b.isBanned("p", now) {
			t.Fatal("still banned after the ban")
		}
	}
	if want := []float64{5, 10, 20, 40}; !equalFloats(bans, want) {
		t.Errorf("bans %v, want %v", bans, want)
	}
	b.registerSuccess("p")
	b.registerFailure("p", now)
	if got := b.banned["p"] - now; got != 5 {
		t.Errorf("ban after a success = %v, want 5", got)
	}
	off := newBlacklist(-1, 2)
	off.registerFailure("p", now)
	if off.isBanned("p", now) {
		t.Error("a disabled blacklist banned a peer")
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
