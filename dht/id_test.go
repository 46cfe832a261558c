package dht_test

import (
	"encoding/hex"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// dhtidVectors is vectors/dhtid.json (generate* sections: key_test.go).
type dhtidVectors struct {
	Generate []struct {
		Name          string           `json:"name"`
		Key           vectors.Value    `json:"key"`
		HashInputKind string           `json:"hash_input_kind"`
		HashInput     vectors.HexBytes `json:"hash_input_hex"`
		DHTID         vectors.HexBytes `json:"dhtid_hex"`
		DHTIDInt      string           `json:"dhtid_int"`
	} `json:"generate"`
	GenerateErrors []struct {
		Name  string        `json:"name"`
		Key   vectors.Value `json:"key"`
		Error vectors.Error `json:"error"`
	} `json:"generate_errors"`
	GenerateSpecial []struct {
		Name             string           `json:"name"`
		Key              vectors.Value    `json:"key"`
		Sample1          vectors.HexBytes `json:"sample_1_hex"`
		Sample2          vectors.HexBytes `json:"sample_2_hex"`
		TwoCallsDiffer   bool             `json:"two_calls_differ"`
		NotUsedSHA1OfNil vectors.HexBytes `json:"not_used_sha1_of_msgpack_nil_hex"`
	} `json:"generate_special"`
	XorDistance []struct {
		Name        string           `json:"name"`
		A           vectors.HexBytes `json:"a_hex"`
		B           vectors.HexBytes `json:"b_hex"`
		DistanceInt string           `json:"distance_int"`
		Distance    vectors.HexBytes `json:"distance_hex"`
	} `json:"xor_distance"`
	FromBytes []struct {
		Name     string           `json:"name"`
		Input    vectors.HexBytes `json:"input_hex"`
		DHTID    vectors.HexBytes `json:"dhtid_hex"`
		DHTIDInt string           `json:"dhtid_int"`
		Error    *vectors.Error   `json:"error"`
	} `json:"from_bytes"`
	LongestCommonPrefix []struct {
		Name   string             `json:"name"`
		IDs    []vectors.HexBytes `json:"ids_hex"`
		Result int                `json:"result"`
	} `json:"longest_common_prefix_length"`
	SortByDistance []struct {
		Name         string             `json:"name"`
		Query        vectors.HexBytes   `json:"query_hex"`
		Candidates   []vectors.HexBytes `json:"candidates_hex"`
		DistancesInt []string           `json:"distances_int"`
		Sorted       []vectors.HexBytes `json:"sorted_hex"`
	} `json:"sort_by_distance"`
}

func loadDHTID(t *testing.T) dhtidVectors {
	t.Helper()
	var v dhtidVectors
	vectors.Load(t, "dhtid.json", &v)
	require.NotEmpty(t, v.Generate)
	return v
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
	for _, tc := range loadDHTID(t).XorDistance {
		t.Run(tc.Name, func(t *testing.T) {
			a, b := mustID(t, tc.A), mustID(t, tc.B)
			d := a.Xor(b)
			require.Equal(t, hex.EncodeToString(tc.Distance), d.String())
			require.Equal(t, tc.DistanceInt, d.Big().String())
			require.Equal(t, d, b.Xor(a), "XOR distance is symmetric")
		})
	}
}

func TestIDFromBytes(t *testing.T) {
	for _, tc := range loadDHTID(t).FromBytes {
		t.Run(tc.Name, func(t *testing.T) {
			id, err := dht.IDFromBytes(tc.Input)
			if tc.Error != nil {
				require.Equal(t, "dhtid_out_of_range", tc.Error.Kind)
				require.ErrorIs(t, err, dht.ErrIDOutOfRange)
				return
			}
			require.NoError(t, err)
			require.Equal(t, hex.EncodeToString(tc.DHTID), id.String())
			require.Equal(t, tc.DHTIDInt, id.Big().String())
			require.Equal(t, []byte(tc.DHTID), id.Bytes(), "serialization is always 20 bytes")
		})
	}
}

func TestIDCommonPrefixLen(t *testing.T) {
	for _, tc := range loadDHTID(t).LongestCommonPrefix {
		t.Run(tc.Name, func(t *testing.T) {
			ids := make([]dht.ID, len(tc.IDs))
			for i, b := range tc.IDs {
				ids[i] = mustID(t, b)
			}
			require.Equal(t, tc.Result, dht.CommonPrefixLen(ids...))
			slices.Reverse(ids)
			require.Equal(t, tc.Result, dht.CommonPrefixLen(ids...), "order does not matter")
		})
	}
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
	for _, tc := range loadDHTID(t).SortByDistance {
		t.Run(tc.Name, func(t *testing.T) {
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
