package ipc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBackoffDelay(t *testing.T) {
	cfg := BackoffConfig{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: 0.5}.withDefaults()
	tests := []struct {
		name string
		n    int
		rnd  float64
		want time.Duration
	}{
		{name: "first, no jitter", n: 1, rnd: 0.5, want: 100 * time.Millisecond},
		{name: "second", n: 2, rnd: 0.5, want: 300 * time.Millisecond},
		{name: "capped", n: 10, rnd: 0.5, want: time.Second},
		{name: "jitter low", n: 1, rnd: 0, want: 50 * time.Millisecond},
		{name: "jitter high", n: 1, rnd: 1, want: 150 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, cfg.delay(tt.n, tt.rnd))
		})
	}
}

func TestIntensity(t *testing.T) {
	in := intensity{cfg: IntensityConfig{MaxRestarts: 2, Period: 10 * time.Second}}
	t0 := time.Unix(1000, 0)
	assert.True(t, in.allow(t0))
	assert.True(t, in.allow(t0.Add(time.Second)))
	assert.False(t, in.allow(t0.Add(2*time.Second)), "a third restart within 10 s")
	assert.True(t, in.allow(t0.Add(11*time.Second)), "the first one left the window")
	unlimited := intensity{cfg: IntensityConfig{MaxRestarts: -1}}
	for range 100 {
		assert.True(t, unlimited.allow(t0))
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "zero pool", err: PoolConfig{}.Validate()},
		{name: "negative workers", err: PoolConfig{Workers: -1}.Validate(), want: "Workers"},
		{name: "bad name", err: PoolConfig{Name: "a/b"}.Validate(), want: "Name"},
		{name: "bad policy", err: PoolConfig{Restart: 7}.Validate(), want: "Restart"},
		{name: "backoff max below initial", err: PoolConfig{Backoff: BackoffConfig{Initial: time.Second, Max: time.Millisecond}}.Validate(), want: "Backoff.Max"},
		{name: "jitter", err: PoolConfig{Backoff: BackoffConfig{Jitter: 1}}.Validate(), want: "Backoff.Jitter"},
		{name: "multiplier", err: PoolConfig{Backoff: BackoffConfig{Multiplier: 0.5}}.Validate(), want: "Backoff.Multiplier"},
		{name: "stop", err: PoolConfig{Stop: StopConfig{KillTimeout: -1}}.Validate(), want: "Stop.KillTimeout"},
		{name: "node peer without id", err: NodeConfig{InitialPeers: []string{"/ip4/127.0.0.1/tcp/1"}}.Validate(), want: "InitialPeers[0]"},
		{name: "node not a maddr", err: NodeConfig{HostMaddrs: []string{"localhost:1"}}.Validate(), want: "HostMaddrs[0]"},
		{name: "validator with no kind", err: NodeConfig{Validators: []ValidatorSpec{{}}}.Validate(), want: "Validators[0]"},
		{name: "schema not json", err: NodeConfig{Validators: []ValidatorSpec{{Schema: &SchemaValidatorSpec{ConfigJSON: []byte("{")}}}}.Validate(), want: "ConfigJSON"},
		{name: "dht backoff rate", err: NodeConfig{DHT: DHTParams{BackoffRate: 0.5}}.Validate(), want: "DHT.BackoffRate"},
		{name: "dht expiration horizon", err: NodeConfig{DHT: DHTParams{MaxExpirationHorizon: time.Second}}.Validate(), want: "DHT.MaxExpirationHorizon"},
		{name: "worker start timeout", err: WorkerConfig{StartTimeout: -1}.Validate(), want: "StartTimeout"},
		{name: "exec handshake timeout", err: ExecConfig{HandshakeTimeout: -1}.Validate(), want: "HandshakeTimeout"},
		{name: "exec missing binary", err: ExecConfig{Path: "/nonexistent/worker"}.Validate(), want: "Path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				assert.NoError(t, tt.err)
				return
			}
			assert.ErrorIs(t, tt.err, ErrInvalidConfig)
			assert.ErrorContains(t, tt.err, tt.want)
		})
	}
}
