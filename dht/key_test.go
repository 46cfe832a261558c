package dht_test

import (
	"crypto/sha1"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// TestKeyGenerate checks DHTID.generate: str, int, float, bool, tuple, list and map keys are hashed
// as their msgpack encoding, bytes keys as they are.
func TestKeyGenerate(t *testing.T) {
	for _, tc := range loadDHTID(t).Generate {
		t.Run(tc.Name, func(t *testing.T) {
			v, err := tc.Key.Go()
			require.NoError(t, err)
			key, err := dht.KeyOf(v)
			require.NoError(t, err)
			require.Equal(t, tc.HashInputKind == "raw_bytes", key.Raw, "hash_input_kind %s", tc.HashInputKind)
			require.Equal(t, hex.EncodeToString(tc.HashInput), hex.EncodeToString(key.Data))
			id := key.ID()
			require.Equal(t, hex.EncodeToString(tc.DHTID), id.String())
			require.Equal(t, tc.DHTIDInt, id.Big().String())
		})
	}
}

func TestKeyGenerateErrors(t *testing.T) {
	for _, tc := range loadDHTID(t).GenerateErrors {
		t.Run(tc.Name, func(t *testing.T) {
			require.Equal(t, "int_out_of_range", tc.Error.Kind)
			v, err := tc.Key.Go()
			require.NoError(t, err)
			_, err = dht.KeyOf(v)
			require.ErrorIs(t, err, dht.ErrInvalidKey)
			require.ErrorIs(t, err, msgpack.ErrIntOutOfRange)
			require.Panics(t, func() { dht.MustKey(v) })
		})
	}
}

// TestKeyNone: hivemind's DHTID.generate(None) returns a random ID, so None is no key at all. A Go
// nil is refused rather than hashed to SHA-1(c0), an ID no hivemind peer would ever look up.
func TestKeyNone(t *testing.T) {
	for _, tc := range loadDHTID(t).GenerateSpecial {
		t.Run(tc.Name, func(t *testing.T) {
			require.Equal(t, "nil", string(tc.Key.Kind))
			require.True(t, tc.TwoCallsDiffer)
			require.NotEqual(t, tc.Sample1, tc.Sample2)
			_, err := dht.KeyOf(nil)
			require.ErrorIs(t, err, dht.ErrInvalidKey)
			sum := sha1.Sum([]byte{0xc0})
			require.Equal(t, []byte(tc.NotUsedSHA1OfNil), sum[:], "the ID KeyOf(nil) does not produce")
			require.NotEqual(t, dht.RandomID(), dht.RandomID(), "random IDs are what hivemind uses None for")
		})
	}
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
