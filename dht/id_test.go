package dht_test

import (
	"bytes"
	"encoding/hex"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// The cases of vectors/dhtid.json (the generate* lists: key_test.go), one type per list.

type xorDistanceCase struct {
	A           vectors.HexBytes `json:"a_hex"`
	B           vectors.HexBytes `json:"b_hex"`
	DistanceInt string           `json:"distance_int"`
	Distance    vectors.HexBytes `json:"distance_hex"`
}

type fromBytesCase struct {
	Input    vectors.HexBytes `json:"input_hex"`
	DHTID    vectors.HexBytes `json:"dhtid_hex"`
	DHTIDInt string           `json:"dhtid_int"`
	Error    *vectors.Error   `json:"error"`
}

type commonPrefixCase struct {
	IDs    []vectors.HexBytes `json:"ids_hex"`
	Result int                `json:"result"`
}

type sortByDistanceCase struct {
	Query        vectors.HexBytes   `json:"query_hex"`
	Candidates   []vectors.HexBytes `json:"candidates_hex"`
	DistancesInt []string           `json:"distances_int"`
	Sorted       []vectors.HexBytes `json:"sorted_hex"`
}

// idKinds maps the error kinds of dhtid.json to this package's errors (and the codec's, for keys).
var idKinds = vectors.Kinds{
	"dhtid_out_of_range": dht.ErrIDOutOfRange,
	"int_out_of_range":   msgpack.ErrIntOutOfRange,
	"unsupported_type":   msgpack.ErrUnsupportedType,
	"map_key_type":       msgpack.ErrMapKeyType,
	"invalid_ext":        msgpack.ErrInvalidExt,
}

// mustID reads a 20-byte ID from the vectors.
func mustID(t *testing.T, b []byte) dht.ID {
	t.Helper()
	require.Len(t, b, dht.IDLen)
	id, err := dht.IDFromBytes(b)
	require.NoError(t, err)
	return id
}

func TestIDXorDistance(t *testing.T) {
	vectors.Run(t, "dhtid.json", "xor_distance", func(t *testing.T, tc xorDistanceCase) {
		a, b := mustID(t, tc.A), mustID(t, tc.B)
		d := a.Xor(b)
		require.Equal(t, hex.EncodeToString(tc.Distance), d.String())
		require.Equal(t, tc.DistanceInt, d.Big().String())
		require.Equal(t, d, b.Xor(a), "XOR distance is symmetric")
	})
}

func TestIDFromBytes(t *testing.T) {
	vectors.Run(t, "dhtid.json", "from_bytes", func(t *testing.T, tc fromBytesCase) {
		id, err := dht.IDFromBytes(tc.Input)
		if tc.Error != nil {
			idKinds.Require(t, *tc.Error, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, hex.EncodeToString(tc.DHTID), id.String())
		require.Equal(t, tc.DHTIDInt, id.Big().String())
		require.Equal(t, hex.EncodeToString(tc.DHTID), hex.EncodeToString(id.Bytes()), "serialization is always 20 bytes")
	})
}

func TestIDCommonPrefixLen(t *testing.T) {
	vectors.Run(t, "dhtid.json", "longest_common_prefix_length", func(t *testing.T, tc commonPrefixCase) {
		ids := make([]dht.ID, len(tc.IDs))
		for i, b := range tc.IDs {
			ids[i] = mustID(t, b)
		}
		require.Equal(t, tc.Result, dht.CommonPrefixLen(ids...))
		slices.Reverse(ids)
		require.Equal(t, tc.Result, dht.CommonPrefixLen(ids...), "order does not matter")
	})
	// hivemind's helper over zero-padded bit strings: one ID shares all 160 bits with itself; the
	// result over several IDs is the minimum over pairs with the first.
	var zero, top, low dht.ID
	top[0], low[19] = 0x80, 1
	require.Equal(t, 160, dht.CommonPrefixLen(zero))
	require.Equal(t, 159, dht.CommonPrefixLen(zero, low))
	require.Equal(t, 0, dht.CommonPrefixLen(zero, low, top))
	require.Equal(t, 0, dht.CommonPrefixLen())
}

func TestIDSortByDistance(t *testing.T) {
	vectors.Run(t, "dhtid.json", "sort_by_distance", func(t *testing.T, tc sortByDistanceCase) {
		query := mustID(t, tc.Query)
		require.Len(t, tc.DistancesInt, len(tc.Candidates))
		ids := make([]dht.ID, len(tc.Candidates))
		for i, b := range tc.Candidates {
			ids[i] = mustID(t, b)
			require.Equal(t, tc.DistancesInt[i], ids[i].Xor(query).Big().String(), "candidate %d", i)
		}
		slices.SortFunc(ids, func(a, b dht.ID) int { return a.Xor(query).Cmp(b.Xor(query)) })
		got := make([]string, len(ids))
		want := make([]string, len(tc.Sorted))
		for i := range ids {
			got[i] = ids[i].String()
		}
		for i, b := range tc.Sorted {
			want[i] = hex.EncodeToString(b)
		}
		require.Equal(t, want, got)
		for i := 1; i < len(ids); i++ {
			require.False(t, dht.CloserTo(query, ids[i], ids[i-1]), "position %d", i)
		}
	})
}

func TestIDMethods(t *testing.T) {
	var a, b dht.ID
	a[19], b[0] = 1, 1
	require.True(t, a.Less(b))
	require.False(t, b.Less(a))
	require.Equal(t, -1, a.Cmp(b))
	require.Equal(t, 0, a.Cmp(a))
	require.Equal(t, "0000000000000000000000000000000000000001", a.String())
	raw := a.Bytes()
	raw[0] = 0xff
	require.Equal(t, byte(0), a[0], "Bytes returns a fresh slice")
	require.NotEqual(t, dht.RandomID(), dht.RandomID())
}

// TestIDCmpXorOracle: Cmp and Xor, computed word by word, agree with byte-wise bytes.Compare and
// byte-wise XOR on random IDs and on IDs that differ only in one byte (each word boundary).
func TestIDCmpXorOracle(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(4, 4))
	random := func() dht.ID {
		var id dht.ID
		for i := range id {
			id[i] = byte(rng.UintN(256))
		}
		return id
	}
	for i := range 20000 {
		a, b := random(), random()
		if i%2 == 1 { // differ in one byte only
			b = a
			b[i%dht.IDLen] ^= byte(1 + rng.UintN(255))
		}
		if got, want := a.Cmp(b), bytes.Compare(a[:], b[:]); got != want {
			t.Fatalf("%s.Cmp(%s) = %d, want %d", a, b, got, want)
		}
		if a.Cmp(a) != 0 || a.Less(a) {
			t.Fatalf("%s is not equal to itself", a)
		}
		var want dht.ID
		for j := range want {
			want[j] = a[j] ^ b[j]
		}
		if got := a.Xor(b); got != want {
			t.Fatalf("%s.Xor(%s) = %s, want %s", a, b, got, want)
		}
	}
}
