package dht_test

import (
	"crypto/sha1"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

type generateCase struct {
	Key           vectors.Value    `json:"key"`
	HashInputKind string           `json:"hash_input_kind"`
	HashInput     vectors.HexBytes `json:"hash_input_hex"`
	DHTID         vectors.HexBytes `json:"dhtid_hex"`
	DHTIDInt      string           `json:"dhtid_int"`
}

type generateErrorCase struct {
	Key   vectors.Value `json:"key"`
	Error vectors.Error `json:"error"`
}

type generateSpecialCase struct {
	Key              vectors.Value    `json:"key"`
	Sample1          vectors.HexBytes `json:"sample_1_hex"`
	Sample2          vectors.HexBytes `json:"sample_2_hex"`
	TwoCallsDiffer   bool             `json:"two_calls_differ"`
	NotUsedSHA1OfKey vectors.HexBytes `json:"not_used_sha1_of_msgpack_nil_hex"`
}

// TestKeyGenerate checks DHTID.generate: str, int, float, bool, tuple, list and map keys are hashed
// as their msgpack encoding, bytes keys as they are.
func TestKeyGenerate(t *testing.T) {
	vectors.Run(t, "dhtid.json", "generate", func(t *testing.T, tc generateCase) {
		var raw bool
		switch tc.HashInputKind {
		case "msgpack":
		case "raw_bytes":
			raw = true
		default:
			t.Fatalf("hash_input_kind %q: want msgpack or raw_bytes", tc.HashInputKind)
		}
		v, err := tc.Key.Go()
		require.NoError(t, err)
		key, err := dht.KeyOf(v)
		require.NoError(t, err)
		require.Equal(t, raw, key.Raw, "hash_input_kind %s", tc.HashInputKind)
		require.Equal(t, hex.EncodeToString(tc.HashInput), hex.EncodeToString(key.Data))
		id := key.ID()
		require.Equal(t, hex.EncodeToString(tc.DHTID), id.String())
		require.Equal(t, tc.DHTIDInt, id.Big().String())
	})
}

// TestKeyGenerateErrors: keys hivemind cannot serialize are refused (ErrInvalidKey wrapping the
// codec's error of the recorded kind).
func TestKeyGenerateErrors(t *testing.T) {
	vectors.Run(t, "dhtid.json", "generate_errors", func(t *testing.T, tc generateErrorCase) {
		v, err := tc.Key.Go()
		if err == nil {
			_, err = dht.KeyOf(v)
			require.ErrorIs(t, err, dht.ErrInvalidKey)
			require.Panics(t, func() { dht.MustKey(v) })
		}
		idKinds.Require(t, tc.Error, err)
	})
}

// TestKeyNone: hivemind's DHTID.generate(None) returns a random ID, so None is no key at all. A Go
// nil is refused rather than hashed to SHA-1(c0), an ID no hivemind peer would ever look up.
func TestKeyNone(t *testing.T) {
	vectors.Run(t, "dhtid.json", "generate_special", func(t *testing.T, tc generateSpecialCase) {
		if tc.Key.Kind != vectors.KindNil {
			t.Fatalf("a special key of kind %s: only None (nil) is special", tc.Key.Kind)
		}
		require.True(t, tc.TwoCallsDiffer)
		require.NotEqual(t, hex.EncodeToString(tc.Sample1), hex.EncodeToString(tc.Sample2))
		_, err := dht.KeyOf(nil)
		require.ErrorIs(t, err, dht.ErrInvalidKey)
		encoded, err := tc.Key.Msgpack()
		require.NoError(t, err)
		sum := sha1.Sum(encoded)
		require.Equal(t, hex.EncodeToString(tc.NotUsedSHA1OfKey), hex.EncodeToString(sum[:]), "the ID KeyOf(nil) does not produce")
		require.NotEqual(t, dht.RandomID(), dht.RandomID(), "random IDs are what hivemind uses None for")
	})
}

func TestKeyForms(t *testing.T) {
	b := []byte("key")
	raw := dht.RawKey(b)
	b[0] = 'x'
	require.Equal(t, dht.Key{Data: []byte("key"), Raw: true}, raw, "RawKey copies its input")

	viaKeyOf, err := dht.KeyOf([]byte("key"))
	require.NoError(t, err)
	require.Equal(t, raw, viaKeyOf)
	require.Equal(t, "a62f2225bf70bfaccbc7f1ef2a397836717377de", raw.ID().String())

	// A string and the same bytes are different keys (msgpack str vs raw bytes).
	str := dht.MustKey("key")
	require.False(t, str.Raw)
	require.Equal(t, "a36b6579", hex.EncodeToString(str.Data))
	require.NotEqual(t, raw.ID(), str.ID())

	// Pre-encoded msgpack is hashed as it is.
	pre, err := dht.KeyOf(msgpack.Raw{0xa3, 'k', 'e', 'y'})
	require.NoError(t, err)
	require.Equal(t, str.ID(), pre.ID())

	_, err = dht.KeyOf(struct{}{})
	require.ErrorIs(t, err, dht.ErrInvalidKey)
	require.ErrorIs(t, err, msgpack.ErrUnsupportedType)
}
