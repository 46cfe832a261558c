package worker

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// FuzzDHTConfig feeds an arbitrary NodeConfig, as the parent's Configure call carries it, to the
// NodeConfig → dht.Config mapping: it returns an ErrInvalidConfig error or a config that validates;
// an accepted config keeps every duration's sign and value (to the nanosecond), never takes a NaN,
// and lists each initial peer once.
func FuzzDHTConfig(f *testing.F) {
	keyFile := filepath.Join(f.TempDir(), "rsa.pem")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(keyFile, pemKey, 0o600); err != nil {
		f.Fatal(err)
	}
	const peerA = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
	const peerB = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	forever := time.Duration(math.MaxInt64).Seconds()
	for _, c := range []*ipcpb.NodeConfig{
		{},
		{Dht: &ipcpb.DHTParams{BucketSize: 20, NumReplicas: 5, WaitTimeoutSeconds: 3, RefreshIntervalSeconds: 60, BackoffRate: 2}},
		{InitialPeers: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + peerA, "/ip4/127.0.0.1/tcp/2/p2p/" + peerA, "/ip6/::1/udp/3/quic-v1/p2p/" + peerB + "/p2p-circuit"}},
		{InitialPeers: []string{"/ip4/127.0.0.1/tcp/1"}},
		{InitialPeers: []string{"/p2p/not-a-peer-id"}},
		{Dht: &ipcpb.DHTParams{BucketSize: -1, CacheNearest: -1, MaxStorageEntries: -5}},
		{Dht: &ipcpb.DHTParams{WaitTimeoutSeconds: -1}},
		{Dht: &ipcpb.DHTParams{RefreshIntervalSeconds: -1, CacheRefreshBeforeExpirySeconds: -1, BlacklistTimeSeconds: -1}},
		{Dht: &ipcpb.DHTParams{RefreshIntervalSeconds: 1e-4, BlacklistTimeSeconds: 1e-12}},
		{Dht: &ipcpb.DHTParams{BackoffRate: 0.5}},
		{Dht: &ipcpb.DHTParams{BackoffRate: math.Inf(1)}},
		{Dht: &ipcpb.DHTParams{WaitTimeoutSeconds: math.NaN()}},
		{Dht: &ipcpb.DHTParams{BlacklistTimeSeconds: math.NaN(), RefreshIntervalSeconds: math.Inf(1)}},
		{Dht: &ipcpb.DHTParams{WaitTimeoutSeconds: forever, BootstrapTimeoutSeconds: 1e10}},
		{Dht: &ipcpb.DHTParams{BlacklistTimeSeconds: forever, RefreshIntervalSeconds: 1e10, CacheRefreshBeforeExpirySeconds: -1e300}},
		{Validators: []*ipcpb.ValidatorSpec{{Kind: &ipcpb.ValidatorSpec_Rsa{Rsa: &ipcpb.RSAValidatorSpec{}}}}},
		{Validators: []*ipcpb.ValidatorSpec{{Kind: &ipcpb.ValidatorSpec_Schema{Schema: &ipcpb.SchemaValidatorSpec{ConfigJson: []byte(`{}`)}}}}},
		{Validators: []*ipcpb.ValidatorSpec{{Kind: &ipcpb.ValidatorSpec_Schema{Schema: &ipcpb.SchemaValidatorSpec{ConfigJson: []byte(`{`)}}}}},
		{Validators: []*ipcpb.ValidatorSpec{{}}},
	} {
		b, err := proto.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &ipcpb.NodeConfig{}
		if err := proto.Unmarshal(data, c); err != nil {
			return
		}
		for _, v := range c.GetValidators() {
			if r := v.GetRsa(); r != nil {
				r.PrivateKeyFile = keyFile // never create files where the input says, nor 2048-bit keys per input
			}
		}
		// A timeout that is not negative is accepted on its own, however long.
		for _, alone := range []*ipcpb.DHTParams{
			{WaitTimeoutSeconds: c.GetDht().GetWaitTimeoutSeconds()},
			{BootstrapTimeoutSeconds: c.GetDht().GetBootstrapTimeoutSeconds()},
		} {
			s := alone.GetWaitTimeoutSeconds() + alone.GetBootstrapTimeoutSeconds()
			if !(s >= 0) {
				continue // negative or NaN
			}
			one := &ipcpb.NodeConfig{Dht: alone}
			if _, err := dhtConfig(one, NodeSpec{Config: one, Logger: logger}); err != nil {
				t.Fatalf("config %v refused: %v", one, err)
			}
		}
		cfg, err := dhtConfig(c, NodeSpec{Config: c, Logger: logger})
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("config %v: error %v does not wrap ErrInvalidConfig", c, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config %v mapped to a dht.Config that does not validate: %v", c, err)
		}
		p := c.GetDht()
		for _, d := range []struct {
			name    string
			seconds float64
			got     time.Duration
		}{
			{"wait_timeout", p.GetWaitTimeoutSeconds(), cfg.WaitTimeout},
			{"bootstrap_timeout", p.GetBootstrapTimeoutSeconds(), cfg.BootstrapTimeout},
			{"refresh_interval", p.GetRefreshIntervalSeconds(), cfg.RefreshInterval},
			{"cache_refresh_before_expiry", p.GetCacheRefreshBeforeExpirySeconds(), cfg.CacheRefreshBeforeExpiry},
			{"blacklist_time", p.GetBlacklistTimeSeconds(), cfg.BlacklistTime},
			{"max_expiration_horizon", p.GetMaxExpirationHorizonSeconds(), cfg.MaxExpirationHorizon},
		} {
			if msg := durationMismatch(d.seconds, d.got); msg != "" {
				t.Fatalf("%s_seconds %v accepted as %v (%d ns): %s", d.name, d.seconds, d.got, int64(d.got), msg)
			}
		}
		if p.GetBackoffRate() != cfg.BackoffRate {
			t.Fatalf("backoff_rate %v mapped to %v", p.GetBackoffRate(), cfg.BackoffRate)
		}
		if n := len(cfg.InitialPeers); n > len(c.GetInitialPeers()) || (n == 0) != (len(c.GetInitialPeers()) == 0) {
			t.Fatalf("%d initial peers mapped to %d", len(c.GetInitialPeers()), n)
		}
	})
}

// durationMismatch says how d misrepresents s seconds ("" when it does not): NaN is refused, a
// duration keeps the sign of s and its value to within a nanosecond (plus float rounding), and one
// beyond the range of time.Duration saturates.
func durationMismatch(s float64, d time.Duration) string {
	ns := s * 1e9
	switch {
	case math.IsNaN(s):
		return "NaN must be refused"
	case ns >= math.MaxInt64:
		if d != math.MaxInt64 {
			return "want the largest duration"
		}
		return ""
	case ns <= math.MinInt64:
		if d != math.MinInt64 {
			return "want the smallest duration"
		}
		return ""
	case (s > 0 && d < 0) || (s < 0 && d > 0) || (s == 0 && d != 0):
		return "sign changed"
	case math.Abs(float64(d)-ns) > 1+math.Abs(ns)*0x1p-52:
		return "value changed"
	}
	return ""
}
