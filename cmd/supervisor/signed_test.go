package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// trainerRecord is a case of schema.json's trainer_metrics_records and trainer_progress_records
// (vectors README, "schema.json"): a record a real hivemind DHTNode configured like albert stored,
// signed with its RSASignatureValidator, and its value without the signature (metrics:
// unsigned_value_hex; progress: stripped_value_hex).
type trainerRecord struct {
	RawKey string `json:"raw_key"`
	Record struct {
		Key        vectors.HexBytes `json:"key_hex"`
		Subkey     vectors.HexBytes `json:"subkey_hex"`
		Value      vectors.HexBytes `json:"value_hex"`
		Expiration vectors.Float    `json:"expiration"`
	} `json:"record"`
	UnsignedValue     vectors.HexBytes `json:"unsigned_value_hex"`
	StrippedValue     vectors.HexBytes `json:"stripped_value_hex"`
	CompositeValidate bool             `json:"composite_validate"`
}

// signedEntry is what get printed of a one-entry dictionary: the entry, and its value's msgpack
// as store would read it back from the printed JSON.
type signedEntry struct {
	entry *cli.Object
	value []byte
}

// getOneEntry renders a dictionary holding one record under KEY key, as get prints it.
func getOneEntry(t *testing.T, key string, r dht.Record) signedEntry {
	t.Helper()
	res := &dht.Result{IsDictionary: true, Expiration: r.Expiration, Dictionary: []dht.DictionaryEntry{
		{Subkey: r.Subkey, Value: r.Value, Expiration: r.Expiration},
	}}
	out, err := getJSON(key, res, false, nil)
	require.NoError(t, err)
	checkPrinted(t, out)
	entry := printedEntries(t, field(t, out, "value"), 1)[0]
	text, err := json.Marshal(field(t, entry, "value"))
	require.NoError(t, err)
	v, err := fromJSON(string(text))
	require.NoError(t, err, "printed value %s does not read back", text)
	packed, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return signedEntry{entry: entry, value: packed}
}

// verdict returns an entry's "signed" field, "" when it has none.
func verdict(o *cli.Object) string {
	v, _ := o.Get("signed")
	s, _ := v.(string)
	return s
}

// TestGetVerifiesHivemindSignedRecords: every albert record of the golden vectors (signed by real
// hivemind) prints decoded, without its signature, marked valid; the same record tampered with
// prints marked invalid, with the reason; --raw prints the stored bytes.
func TestGetVerifiesHivemindSignedRecords(t *testing.T) {
	for _, list := range []string{"trainer_metrics_records", "trainer_progress_records"} {
		t.Run(list, func(t *testing.T) {
			vectors.Run(t, "schema.json", list, func(t *testing.T, c trainerRecord) {
				unsigned := c.UnsignedValue
				if unsigned == nil {
					unsigned = c.StrippedValue
				}
				require.NotNil(t, unsigned, "the case gives no value without signature")
				stored := dht.Record{Key: c.Record.Key, Subkey: c.Record.Subkey, Value: c.Record.Value, Expiration: c.Record.Expiration.Value()}
				require.Equal(t, []byte(stored.Key), dht.MustKey(c.RawKey).ID().Bytes(), "the record's key is raw_key's ID")
				require.True(t, bytes.HasPrefix(stored.Value, unsigned), "the signature follows the value")
				signature := stored.Value[len(unsigned):]
				forged, err := msgpack.Marshal("forged")
				require.NoError(t, err)

				got := getOneEntry(t, c.RawKey, stored)
				if c.CompositeValidate {
					assert.Equal(t, signedValid, verdict(got.entry), "hivemind accepted the record")
				} else {
					assert.NotEmpty(t, verdict(got.entry), "a protected record gets a verdict")
				}
				assert.Equal(t, []byte(unsigned), got.value, "printed without its signature")

				tests := []struct {
					name   string
					tamper func(r *dht.Record)
					reason string
				}{
					{name: "another value", tamper: func(r *dht.Record) { r.Value = append(append([]byte{}, forged...), signature...) }, reason: "does not verify"},
					{name: "a later expiration", tamper: func(r *dht.Record) { r.Expiration++ }, reason: "does not verify"},
					{name: "no signature", tamper: func(r *dht.Record) { r.Value = unsigned }, reason: "0 signatures"},
					{name: "two signatures", tamper: func(r *dht.Record) { r.Value = append(append([]byte{}, r.Value...), signature...) }, reason: "2 signatures"},
				}
				for _, tc := range tests {
					t.Run(tc.name, func(t *testing.T) {
						r := stored
						tc.tamper(&r)
						got := getOneEntry(t, c.RawKey, r)
						assert.Equal(t, signedInvalid, verdict(got.entry))
						reason, _ := got.entry.Get("signature_error")
						assert.Contains(t, reason, tc.reason)
						stripped := r.Value[:len(r.Value)-bytes.Count(r.Value, []byte("[signature:"))*len(signature)]
						assert.Equal(t, stripped, got.value, "printed without its signatures")
					})
				}

				t.Run("raw", func(t *testing.T) {
					v := getView{name: c.RawKey, keyID: stored.Key, raw: true}
					out, err := v.render(&dht.Result{IsDictionary: true, Expiration: stored.Expiration, Dictionary: []dht.DictionaryEntry{
						{Subkey: stored.Subkey, Value: stored.Value, Expiration: stored.Expiration},
					}})
					require.NoError(t, err)
					entries, ok := field(t, out, "dictionary").([]*cli.Object)
					require.True(t, ok)
					require.Len(t, entries, 1)
					assert.Equal(t, hex.EncodeToString(stored.Subkey), field(t, entries[0], "subkey_hex"))
					assert.Equal(t, hex.EncodeToString(stored.Value), field(t, entries[0], "value_hex"), "the stored bytes, signature included")
					if c.CompositeValidate {
						assert.Equal(t, signedValid, verdict(entries[0]))
					}
				})
			})
		})
	}
}

// TestGetVerifiesGoSignedRecords: a metrics record signed the way examples/albert's trainers sign
// theirs (the owner marker as a bytes subkey, the node's RSASignature signing the value) prints
// valid; one whose marker names another key prints invalid; an unprotected entry beside them gets
// no verdict, and a regular value neither.
func TestGetVerifiesGoSignedRecords(t *testing.T) {
	newValidator := func() *validator.RSASignature {
		key, err := rsa.GenerateKey(rand.Reader, 1024)
		require.NoError(t, err)
		v, err := validator.NewRSASignature(key, nil)
		require.NoError(t, err)
		return v
	}
	signer, other := newValidator(), newValidator()
	const key = "albert_metrics"
	keyID := dht.MustKey(key).ID().Bytes()
	metrics := mustPack(t, msgpack.MapOf("step", int64(3), "samples_per_second", 12.5, "samples_accumulated", int64(64), "loss", 2.0, "mini_steps", int64(4)))
	sign := func(marker []byte) dht.Record {
		r := dht.Record{Key: keyID, Subkey: mustPack(t, marker), Value: metrics, Expiration: 1.9e9}
		r.Value = signer.SignValue(r)
		return r
	}
	own := sign(signer.OwnerMarker())
	require.NotEqual(t, metrics, own.Value, "the signer signs records holding its marker")
	// A record holding another key's marker: the signer leaves it unsigned, so give it the
	// signer's signature over the same record, as a forger would.
	foreign := dht.Record{Key: keyID, Subkey: mustPack(t, other.OwnerMarker()), Value: metrics, Expiration: 1.9e9}
	foreign.Value = append(append([]byte{}, metrics...), own.Value[len(metrics):]...)

	res := &dht.Result{IsDictionary: true, Expiration: 1.9e9, Dictionary: []dht.DictionaryEntry{
		{Subkey: own.Subkey, Value: own.Value, Expiration: own.Expiration},
		{Subkey: foreign.Subkey, Value: foreign.Value, Expiration: foreign.Expiration},
		{Subkey: mustPack(t, "plain"), Value: mustPack(t, "[signature:not one]"), Expiration: 1.9e9},
	}}
	out, err := getJSON(key, res, false, nil)
	require.NoError(t, err)
	checkPrinted(t, out)
	entries := printedEntries(t, field(t, out, "value"), 3)
	tests := []struct {
		name    string
		entry   *cli.Object
		verdict string
		value   any
	}{
		{name: "signed by the marker's key", entry: entries[0], verdict: signedValid, value: toJSON(msgpack.MapOf("step", int64(3), "samples_per_second", 12.5, "samples_accumulated", int64(64), "loss", 2.0, "mini_steps", int64(4)))},
		{name: "marker of another key", entry: entries[1], verdict: signedInvalid},
		{name: "unprotected, printed whole", entry: entries[2], verdict: "", value: "[signature:not one]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.verdict, verdict(tc.entry))
			_, hasReason := tc.entry.Get("signature_error")
			assert.Equal(t, tc.verdict == signedInvalid, hasReason)
			if tc.value != nil {
				want, err := json.Marshal(tc.value)
				require.NoError(t, err)
				got, err := json.Marshal(field(t, tc.entry, "value"))
				require.NoError(t, err)
				assert.JSONEq(t, string(want), string(got))
			}
		})
	}

	t.Run("one subkey", func(t *testing.T) {
		out, err := getJSON(key, res, true, signer.OwnerMarker())
		require.NoError(t, err)
		assert.Equal(t, true, field(t, out, "found"))
		assert.Equal(t, signedValid, verdict(out))
	})
	t.Run("a regular value", func(t *testing.T) {
		out, err := getJSON(key, &dht.Result{Value: mustPack(t, "v"), Expiration: 5}, false, nil)
		require.NoError(t, err)
		_, signed := out.Get("signed")
		assert.False(t, signed)
	})
}

func mustPack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}
