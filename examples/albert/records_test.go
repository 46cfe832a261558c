package albert

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math"
	"testing"

	"github.com/mr-tron/base58"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// The parts of schema.json these tests read: records stored by real hivemind peers configured like
// examples/albert, and the validators they were checked with (vectors README, "schema.json").

// metricsRecord is one case of schema.json "trainer_metrics_records".
type metricsRecord struct {
	RawKey            string           `json:"raw_key"`
	ValueSource       vectors.Value    `json:"value_source"`
	Record            vectorRecord     `json:"record"`
	UnsignedValue     vectors.HexBytes `json:"unsigned_value_hex"`
	CompositeValidate bool             `json:"composite_validate"`
}

// progressRecord is one case of schema.json "trainer_progress_records".
type progressRecord struct {
	RawKey            string           `json:"raw_key"`
	PeerIDB58         string           `json:"peer_id_b58"`
	Record            vectorRecord     `json:"record"`
	StrippedValue     vectors.HexBytes `json:"stripped_value_hex"`
	DecodedValue      vectors.Value    `json:"decoded_value"`
	CompositeValidate bool             `json:"composite_validate"`
}

// vectorValidator is one entry of schema.json "validators", as far as these tests read it.
type vectorValidator struct {
	Schemas []struct {
		Model  string  `json:"model"`
		Prefix *string `json:"prefix"`
		Fields []struct {
			RawKey string `json:"raw_key"`
		} `json:"fields"`
	} `json:"schemas"`
}

type vectorRecord struct {
	Key        vectors.HexBytes `json:"key_hex"`
	Subkey     vectors.HexBytes `json:"subkey_hex"`
	Value      vectors.HexBytes `json:"value_hex"`
	Expiration vectors.Float    `json:"expiration"`
}

func (r vectorRecord) record() dht.Record {
	return dht.Record{Key: r.Key, Subkey: r.Subkey, Value: r.Value, Expiration: r.Expiration.Value()}
}

// ownerMarker is schema.json's meta.owner_marker_text: the marker of the key that signed its records.
func ownerMarker(t *testing.T) []byte {
	t.Helper()
	var head struct {
		Meta struct {
			OwnerMarker string `json:"owner_marker_text"`
		} `json:"meta"`
	}
	vectors.Load(t, "schema.json", &head)
	require.NotEmpty(t, head.Meta.OwnerMarker)
	return []byte(head.Meta.OwnerMarker)
}

// runIDOf returns the run id of a record's key: the prefix of the schema.json validator model named
// model (a hivemind class name: albert's MetricSchema, ProgressTracker's TrainingProgressSchema) that
// has a field keyed rawKey. A key no such model has fails the test.
func runIDOf(t *testing.T, model, rawKey string) string {
	t.Helper()
	for _, c := range vectors.Cases[vectorValidator](t, "schema.json", "validators") {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
		for _, m := range c.Data.Schemas {
			for _, f := range m.Fields {
				if m.Model == model && f.RawKey == rawKey {
					if m.Prefix == nil {
						t.Fatalf("validator %s: %s without a prefix: no run id", c.Name, model)
					}
					return *m.Prefix
				}
			}
		}
	}
	t.Fatalf("no validator of schema.json has a %s with the key %q", model, rawKey)
	return ""
}

// requireBytes compares byte strings by content (nil and empty are the same byte string).
func requireBytes(t *testing.T, want, got []byte, what string) {
	t.Helper()
	require.Equal(t, hex.EncodeToString(want), hex.EncodeToString(got), what)
}

// checkTrainerRecord checks what a Go trainer of the record's run shares with a Python one: the key
// (rawKey of the run whose validator holds model, as keyOf builds it), the subkey (the owner marker
// as bytes), the verdict of the run's validators (want) and the value they strip to (stripped). It
// returns the verdict.
func checkTrainerRecord(t *testing.T, marker []byte, model string, keyOf func(runID string) dht.Key,
	rawKey string, rec vectorRecord, want bool, stripped []byte) bool {
	t.Helper()
	runID := runIDOf(t, model, rawKey)
	require.Equal(t, dht.MustKey(rawKey), keyOf(runID), "the run's key")
	requireBytes(t, rec.Key, keyOf(runID).ID().Bytes(), "key")
	subkey, err := msgpack.Marshal(marker)
	require.NoError(t, err)
	requireBytes(t, rec.Subkey, subkey, "the subkey is the owner marker as bytes")

	c := runValidator(t, runID, testKey(t, 0))
	ok, reason := c.Validate(rec.record())
	require.Equal(t, want, ok, reason)
	requireBytes(t, stripped, c.StripValue(rec.record()), "strip_value")
	return ok
}

// TestMetricsRecordMatchesHivemind: the metrics record a Go trainer of the record's run builds is
// byte for byte the one a Python albert trainer stored (key, subkey, unsigned value), and the signed
// Python record gets the same verdict from the validators a Go node of that run is configured with
// (the schemas after their JSON trip to the worker).
func TestMetricsRecordMatchesHivemind(t *testing.T) {
	marker := ownerMarker(t)
	vectors.Run(t, "schema.json", "trainer_metrics_records", func(t *testing.T, tc metricsRecord) {
		if !checkTrainerRecord(t, marker, "MetricSchema", MetricsKey, tc.RawKey, tc.Record, tc.CompositeValidate, tc.UnsignedValue) {
			return // a node refuses the record: nobody parses it
		}

		parsed, err := ParseLocalMetrics(tc.UnsignedValue)
		require.NoError(t, err)
		source, err := tc.ValueSource.Go()
		require.NoError(t, err)
		require.True(t, msgpack.Equal(source, parsed.Value()), "parsed %+v, stored %v", parsed, source)
		ours, err := msgpack.Marshal(parsed.Value())
		require.NoError(t, err)
		requireBytes(t, tc.UnsignedValue, ours, "the value a Go trainer stores")
	})
}

// TestProgressRecordMatchesHivemind: a real ProgressTracker's report and tombstone get the same
// verdict from a Go node of the record's run, decode to what the tracker reported, and re-encode to
// the same bytes.
func TestProgressRecordMatchesHivemind(t *testing.T) {
	marker := ownerMarker(t)
	vectors.Run(t, "schema.json", "trainer_progress_records", func(t *testing.T, tc progressRecord) {
		if !checkTrainerRecord(t, marker, "TrainingProgressSchema", ProgressKey, tc.RawKey, tc.Record, tc.CompositeValidate, tc.StrippedValue) {
			return // a node refuses the record: nobody parses it
		}

		p, err := ParseLocalProgress(tc.StrippedValue)
		require.NoError(t, err)
		want, err := tc.DecodedValue.Go()
		require.NoError(t, err)
		if want == nil {
			require.Nil(t, p, "None is a tombstone")
			return
		}
		require.NotNil(t, p, "only None is a tombstone")
		require.True(t, msgpack.Equal(want, p.Value()), "parsed %+v, stored %v", *p, want)
		require.Equal(t, tc.PeerIDB58, base58.Encode(p.PeerID), "peer_id is the tracker's raw peer ID")
		ours, err := msgpack.Marshal(p.Value())
		require.NoError(t, err)
		requireBytes(t, tc.StrippedValue, ours, "the value a Go tracker stores")
	})
}

// signed returns the record a node with key would store for value under the owner's subkey.
func signed(t *testing.T, c *validator.Composite, key dht.Key, owner *rsa.PrivateKey, value any) dht.Record {
	t.Helper()
	v, err := msgpack.Marshal(value)
	require.NoError(t, err)
	sub, err := msgpack.Marshal(validator.OwnerMarkerFor(&owner.PublicKey))
	require.NoError(t, err)
	r := dht.Record{Key: key.ID().Bytes(), Subkey: sub, Value: v, Expiration: 1_800_000_000.25}
	r.Value = c.SignValue(r)
	return r
}

// TestRecordsPassTheSchemas: every value a trainer or tracker stores passes the strict schemas once
// signed, including integral floats and zeros; the same numbers with Python's loose types would not.
func TestRecordsPassTheSchemas(t *testing.T) {
	key := testKey(t, 1)
	c := runValidator(t, DefaultRunID, key)
	tests := []struct {
		name  string
		key   dht.Key
		value any
		valid bool
	}{
		{name: "metrics", key: MetricsKey(DefaultRunID), valid: true,
			value: LocalMetrics{Step: 3, SamplesPerSecond: 97.25, SamplesAccumulated: 320, Loss: 41.5, MiniSteps: 10}.Value()},
		{name: "metrics with integral floats and zeros", key: MetricsKey(DefaultRunID), valid: true,
			value: LocalMetrics{SamplesPerSecond: 0, Loss: 2}.Value()},
		{name: "progress", key: ProgressKey(DefaultRunID), valid: true,
			value: LocalProgress{PeerID: []byte("peer"), Epoch: 2, SamplesAccumulated: 64, SamplesPerSecond: 1e-20, Time: 1.7e9}.Value()},
		{name: "progress tombstone", key: ProgressKey(DefaultRunID), valid: true, value: nil},
		{name: "metrics with an int loss", key: MetricsKey(DefaultRunID), valid: false,
			value: msgpack.MapOf("step", int64(1), "samples_per_second", 1.0, "samples_accumulated", int64(1), "loss", int64(2), "mini_steps", int64(1))},
		{name: "metrics with a float step", key: MetricsKey(DefaultRunID), valid: false,
			value: msgpack.MapOf("step", 1.0, "samples_per_second", 1.0, "samples_accumulated", int64(1), "loss", 2.0, "mini_steps", int64(1))},
		{name: "metrics with a negative step", key: MetricsKey(DefaultRunID), valid: false,
			value: LocalMetrics{Step: -1}.Value()},
		{name: "metrics tombstone", key: MetricsKey(DefaultRunID), valid: false, value: nil},
		{name: "progress with a str peer id", key: ProgressKey(DefaultRunID), valid: false,
			value: msgpack.MapOf("peer_id", "peer", "epoch", int64(0), "samples_accumulated", int64(0),
				"samples_per_second", 0.0, "time", 1.0, "client_mode", false)},
		{name: "other run", key: MetricsKey("other"), valid: true, value: int64(7)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, reason := c.Validate(signed(t, c, tc.key, key, tc.value))
			require.Equal(t, tc.valid, ok, reason)
		})
	}
}

// TestForgedRecordsAreRejected: what another key signs under an owner's marker never validates.
func TestForgedRecordsAreRejected(t *testing.T) {
	alice, mallory := testKey(t, 0), testKey(t, 1)
	aliceNode, malloryNode := runValidator(t, DefaultRunID, alice), runValidator(t, DefaultRunID, mallory)
	value := LocalMetrics{Step: 999, SamplesPerSecond: 1, Loss: 1, MiniSteps: 1}.Value()

	honest := signed(t, aliceNode, MetricsKey(DefaultRunID), alice, value)
	ok, reason := malloryNode.Validate(honest)
	require.True(t, ok, reason)

	// Mallory's node does not sign under alice's marker: the record carries no signature.
	unsigned := signed(t, malloryNode, MetricsKey(DefaultRunID), alice, value)
	ok, _ = aliceNode.Validate(unsigned)
	require.False(t, ok, "an unsigned record under alice's marker")

	// Mallory signs exactly the payload of alice's record, with her own key.
	digest := sha256.Sum256(validator.SigningPayload(honest.Key, honest.Subkey, unsigned.Value, honest.Expiration))
	sig, err := rsa.SignPSS(rand.Reader, mallory, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	require.NoError(t, err)
	forged := honest
	forged.Value = append(append([]byte{}, unsigned.Value...), "[signature:"+base64.StdEncoding.EncodeToString(sig)+"]"...)
	ok, _ = aliceNode.Validate(forged)
	require.False(t, ok, "mallory's signature under alice's marker")
	ok, reason = aliceNode.Validate(honest)
	require.True(t, ok, reason)

	// Both markers in one subkey: mallory's signature is valid, but the record names two owners.
	both := dht.Record{Key: honest.Key, Subkey: append(append([]byte{}, honest.Subkey...),
		validator.OwnerMarkerFor(&mallory.PublicKey)...), Expiration: honest.Expiration}
	both.Value = malloryNode.SignValue(dht.Record{Key: both.Key, Subkey: both.Subkey, Value: unsigned.Value, Expiration: both.Expiration})
	ok, _ = aliceNode.Validate(both)
	require.False(t, ok, "two owners in one subkey")
}

func TestParseLocalMetricsIsStrict(t *testing.T) {
	good := func() *msgpack.Map {
		return msgpack.MapOf("step", int64(1), "samples_per_second", 2.0, "samples_accumulated", int64(3),
			"loss", 4.0, "mini_steps", int64(5))
	}
	with := func(k string, v any) *msgpack.Map { m := good(); m.Set(k, v); return m }
	without := func(k string) *msgpack.Map { m := good(); m.Delete(k); return m }
	tests := []struct {
		name  string
		value any
		ok    bool
	}{
		{name: "valid", value: good(), ok: true},
		{name: "extra field ignored", value: with("note", "hi"), ok: true},
		{name: "int loss", value: with("loss", int64(4))},
		{name: "float step", value: with("step", 1.0)},
		{name: "bool mini_steps", value: with("mini_steps", true)},
		{name: "negative samples", value: with("samples_accumulated", int64(-1))},
		{name: "NaN speed", value: with("samples_per_second", math.NaN())},
		{name: "huge step", value: with("step", uint64(1<<63))},
		{name: "missing loss", value: without("loss")},
		{name: "not a map", value: []any{int64(1)}},
		{name: "None", value: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := msgpack.Marshal(tc.value)
			require.NoError(t, err)
			m, err := ParseLocalMetrics(raw)
			if !tc.ok {
				require.ErrorIs(t, err, ErrBadRecord)
				return
			}
			require.NoError(t, err)
			require.Equal(t, LocalMetrics{Step: 1, SamplesPerSecond: 2, SamplesAccumulated: 3, Loss: 4, MiniSteps: 5}, m)
		})
	}
	_, err := ParseLocalMetrics([]byte{0x81}) // truncated
	require.ErrorIs(t, err, ErrBadRecord)
}

func TestParseLocalProgress(t *testing.T) {
	p := LocalProgress{PeerID: []byte{0, 36, 8, 1}, Epoch: 4, SamplesAccumulated: 12, SamplesPerSecond: 3.5, Time: 1.75e9, ClientMode: true}
	raw, err := msgpack.Marshal(p.Value())
	require.NoError(t, err)
	got, err := ParseLocalProgress(raw)
	require.NoError(t, err)
	require.Equal(t, p, *got)

	got, err = ParseLocalProgress([]byte{0xc0})
	require.NoError(t, err)
	require.Nil(t, got, "None is a tombstone")

	bad := p.Value()
	bad.Set("client_mode", int64(1))
	raw, err = msgpack.Marshal(bad)
	require.NoError(t, err)
	_, err = ParseLocalProgress(raw)
	require.ErrorIs(t, err, ErrBadRecord)
}
