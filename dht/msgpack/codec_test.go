package msgpack_test

import (
	"bytes"
	"encoding/hex"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

func TestMarshalForms(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string
	}{
		{name: "int kinds", in: []any{int(1), int8(-1), int16(-200), int32(70000), uint(255), uint8(7), uint16(65535), uint32(1 << 20), uint64(1<<63 + 1)},
			want: "99 01 ff d1ff38 ce00011170 ccff 07 cdffff ce00100000 cf8000000000000001"},
		{name: "negative boundaries", in: []any{int64(-32), int64(-33), int64(-128), int64(-129), int64(-32768), int64(-32769), int64(math.MinInt32), int64(math.MinInt32 - 1)},
			want: "98 e0 d0df d080 d1ff7f d18000 d2ffff7fff d280000000 d3ffffffff7fffffff"},
		{name: "big ints in range", in: []any{big.NewInt(-5), new(big.Int).SetUint64(math.MaxUint64)},
			want: "92 fb cfffffffffffffffff"},
		{name: "float32 widens", in: float32(1.5), want: "cb3ff8000000000000"},
		{name: "nil containers", in: []any{[]any(nil), msgpack.Tuple(nil), (*msgpack.Map)(nil), []byte(nil)},
			want: "94 90 d44090 80 c400"},
		{name: "str8 at 32", in: strings.Repeat("x", 32), want: "d920" + strings.Repeat("78", 32)},
		{name: "raw passes through", in: []any{msgpack.Raw{0xc3}, msgpack.Raw("\xa1x[signature:abc]")},
			want: "92 c3 a178 5b7369676e61747572653a6162635d"},
		{name: "ext empty is ext8", in: msgpack.Ext{Code: 5}, want: "c70005"},
		{name: "ext fixext2", in: msgpack.Ext{Code: -2, Data: []byte{1, 2}}, want: "d5fe0102"},
		{name: "ext 3 bytes is ext8", in: msgpack.Ext{Code: 0x50, Data: []byte{1, 2, 3}}, want: "c70350010203"},
		{name: "ext fixext16", in: msgpack.Ext{Code: 1, Data: make([]byte, 16)}, want: "d801" + strings.Repeat("00", 16)},
		{name: "nested tuple", in: msgpack.Tuple{msgpack.Tuple{}, []any{msgpack.Tuple{int64(1)}}},
			want: "c7094092d44090 91d5409101"},
		{name: "map in order", in: msgpack.MapOf("b", 1, []byte("a"), msgpack.Tuple{}), want: "82 a162 01 c40161 d44090"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.Marshal(tc.in)
			require.NoError(t, err)
			require.Equal(t, strings.ReplaceAll(tc.want, " ", ""), hex.EncodeToString(got))
		})
	}
}

func TestMarshalLengthBoundaries(t *testing.T) {
	cases := []struct {
		name   string
		in     any
		header string
	}{
		{name: "str16", in: strings.Repeat("a", 256), header: "da0100"},
		{name: "str32", in: strings.Repeat("a", 65536), header: "db00010000"},
		{name: "bin16", in: make([]byte, 256), header: "c50100"},
		{name: "bin32", in: make([]byte, 65536), header: "c600010000"},
		{name: "array32", in: make([]any, 65536), header: "dd00010000"},
		{name: "ext16", in: msgpack.Ext{Code: msgpack.ExtTensor, Data: make([]byte, 256)}, header: "c8010051"},
		{name: "ext32", in: msgpack.Ext{Code: msgpack.ExtTensor, Data: make([]byte, 65536)}, header: "c90001000051"},
		{name: "tuple ext16", in: make(msgpack.Tuple, 300), header: "c8012f40dc012c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.Marshal(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.header, hex.EncodeToString(got[:len(tc.header)/2]))
			back, err := msgpack.Unmarshal(got)
			require.NoError(t, err)
			require.True(t, msgpack.Equal(tc.in, back))
		})
	}
	big := msgpack.NewMap()
	for i := range 70000 {
		big.Set(strings.Repeat("k", i%3)+string(rune('a'+i%26))+string(rune(i)), nil)
	}
	got, err := msgpack.Marshal(big)
	require.NoError(t, err)
	require.Equal(t, byte(0xdf), got[0])
}

func TestMarshalErrors(t *testing.T) {
	cyclic := make([]any, 1)
	cyclic[0] = cyclic
	cyclicMap := msgpack.NewMap()
	cyclicMap.Set("self", cyclicMap)
	type named int
	cases := []struct {
		name string
		in   any
		want error
	}{
		{name: "big int above range", in: new(big.Int).Lsh(big.NewInt(1), 64), want: msgpack.ErrIntOutOfRange},
		{name: "big int below range", in: new(big.Int).Sub(big.NewInt(math.MinInt64), big.NewInt(1)), want: msgpack.ErrIntOutOfRange},
		{name: "nil big int", in: (*big.Int)(nil), want: msgpack.ErrUnsupportedType},
		{name: "invalid utf8 string", in: "\xff", want: msgpack.ErrInvalidUTF8},
		{name: "named type", in: named(1), want: msgpack.ErrUnsupportedType},
		{name: "go map", in: map[string]any{"a": 1}, want: msgpack.ErrUnsupportedType},
		{name: "string slice", in: []string{"a"}, want: msgpack.ErrUnsupportedType},
		{name: "nested unsupported", in: msgpack.Tuple{1, struct{}{}}, want: msgpack.ErrUnsupportedType},
		{name: "empty raw", in: msgpack.Raw{}, want: msgpack.ErrMalformed},
		{name: "cyclic list", in: cyclic, want: msgpack.ErrTooDeep},
		{name: "cyclic map", in: cyclicMap, want: msgpack.ErrTooDeep},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := msgpack.Marshal(tc.in)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestMaxDepth(t *testing.T) {
	nest := func(n int) any {
		var v any = int64(0)
		for range n {
			v = []any{v}
		}
		return v
	}
	// n arrays around a scalar: the scalar sits at depth n+1, which is not a container.
	ok, err := msgpack.Marshal(nest(msgpack.MaxDepth))
	require.NoError(t, err)
	_, err = msgpack.Unmarshal(ok)
	require.NoError(t, err)
	_, err = msgpack.Marshal(nest(msgpack.MaxDepth + 1))
	require.ErrorIs(t, err, msgpack.ErrTooDeep)
	deep := append(bytes.Repeat([]byte{0x91}, msgpack.MaxDepth+1), 0xc0)
	_, err = msgpack.Unmarshal(deep)
	require.ErrorIs(t, err, msgpack.ErrTooDeep)

	// A tuple counts two levels (the ext and the array inside), on both sides.
	var tup any = int64(0)
	for range msgpack.MaxDepth / 2 {
		tup = msgpack.Tuple{tup}
	}
	enc, err := msgpack.Marshal(tup)
	require.NoError(t, err)
	_, err = msgpack.Unmarshal(enc)
	require.NoError(t, err)
	_, err = msgpack.Marshal(msgpack.Tuple{tup})
	require.ErrorIs(t, err, msgpack.ErrTooDeep)
}

func TestUnmarshalHostile(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  error
	}{
		{name: "empty", input: "", want: msgpack.ErrTruncated},
		{name: "array32 claims 4G items", input: "ddffffffff", want: msgpack.ErrTruncated},
		{name: "map32 claims 4G entries", input: "dfffffffff", want: msgpack.ErrTruncated},
		{name: "map claims more entries than bytes allow", input: "82c0", want: msgpack.ErrTruncated},
		{name: "bin32 claims 4G bytes", input: "c6ffffffff", want: msgpack.ErrTruncated},
		{name: "str32 claims 4G bytes", input: "dbffffffff", want: msgpack.ErrTruncated},
		{name: "ext32 claims 4G bytes", input: "c9ffffffff40", want: msgpack.ErrTruncated},
		{name: "ext without type", input: "c701", want: msgpack.ErrTruncated},
		{name: "short float64", input: "cb3ff8", want: msgpack.ErrTruncated},
		{name: "short uint16", input: "cd01", want: msgpack.ErrTruncated},
		{name: "short length", input: "da00", want: msgpack.ErrTruncated},
		{name: "reserved byte", input: "c1", want: msgpack.ErrMalformed},
		{name: "tuple key", input: "81d4409001", want: msgpack.ErrMapKeyType},
		{name: "nil key", input: "81c001", want: msgpack.ErrMapKeyType},
		{name: "invalid utf8 key", input: "81a1ff01", want: msgpack.ErrInvalidUTF8},
		{name: "surrogate in str", input: "a3eda080", want: msgpack.ErrInvalidUTF8},
		{name: "tuple of an int", input: "d44001", want: msgpack.ErrMalformed},
		{name: "tuple payload with extra data", input: "d54090c0", want: msgpack.ErrExtraData},
		{name: "tuple payload truncated", input: "d44092", want: msgpack.ErrTruncated},
		{name: "trailing data", input: "0000", want: msgpack.ErrExtraData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := unhex(t, tc.input)
			_, err := msgpack.Unmarshal(input)
			require.ErrorIs(t, err, tc.want)
			allocs := testing.AllocsPerRun(10, func() { _, _ = msgpack.Unmarshal(input) })
			require.Less(t, allocs, 16.0, "a failing decode must not allocate per declared item")
		})
	}
}

func TestUnmarshalTupleLikePython(t *testing.T) {
	// hivemind decodes ext 0x40 as tuple(loads(payload)), so any sequence payload is accepted.
	cases := []struct {
		name  string
		input string
		want  msgpack.Tuple
	}{
		{name: "array", input: "c7034092c3c2", want: msgpack.Tuple{true, false}},
		{name: "str gives characters", input: "d640a3c3a962", want: msgpack.Tuple{"é", "b"}},
		{name: "bin gives byte values", input: "c70440c4020aff", want: msgpack.Tuple{int64(10), int64(255)}},
		{name: "map gives keys", input: "c7084082a16101c4016202", want: msgpack.Tuple{"a", []byte("b")}},
		{name: "tuple of a tuple", input: "c70440d5409101", want: msgpack.Tuple{int64(1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.Unmarshal(unhex(t, tc.input))
			require.NoError(t, err)
			requireModelEqual(t, tc.want, got)
		})
	}
}

func TestUnmarshalTypes(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  any
	}{
		{name: "int8 sign", input: "d080", want: int64(-128)},
		{name: "int16 sign", input: "d1ff38", want: int64(-200)},
		{name: "int32 sign", input: "d2ffff7fff", want: int64(-32769)},
		{name: "int64 min", input: "d38000000000000000", want: int64(math.MinInt64)},
		{name: "positive int64 form", input: "d3000000000000002a", want: int64(42)},
		{name: "uint64 in int64 range", input: "cf7fffffffffffffff", want: int64(math.MaxInt64)},
		{name: "uint64 above int64", input: "cf8000000000000000", want: uint64(1 << 63)},
		{name: "bin8", input: "c4026869", want: []byte("hi")},
		{name: "str16", input: "da0002" + "6869", want: "hi"},
		{name: "array16", input: "dc0001c0", want: []any{nil}},
		{name: "map16 duplicate keys keep the first position", input: "de0003a16101a16202a16103",
			want: msgpack.MapOf("a", int64(3), "b", int64(2))},
		{name: "ext 0x50 stays opaque", input: "d45001", want: msgpack.Ext{Code: 0x50, Data: []byte{1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.Unmarshal(unhex(t, tc.input))
			require.NoError(t, err)
			requireModelEqual(t, tc.want, got)
		})
	}
}

func TestUnmarshalDoesNotAlias(t *testing.T) {
	input := unhex(t, "93 c40178 d5500102 d5070304")
	v, err := msgpack.Unmarshal(input)
	require.NoError(t, err)
	for i := range input {
		input[i] = 0
	}
	items := v.([]any)
	require.Equal(t, []byte("x"), items[0])
	require.Equal(t, msgpack.Ext{Code: msgpack.ExtDictionary, Data: []byte{1, 2}}, items[1])
	require.Equal(t, []byte{3, 4}, items[2])
}

// TestUnknownExtDecodesToPayload: hivemind's ext hook returns the bare payload of an ext code it does
// not know ("Unknown ExtType code: ..., leaving it as is"), so a value decoded and encoded again
// carries it as bin; the codes hivemind registers stay ext.
func TestUnknownExtDecodesToPayload(t *testing.T) {
	cases := []struct {
		name, input string
		want        any
		reencoded   string
	}{
		{name: "fixext2 code 7", input: "d5070102", want: []byte{1, 2}, reencoded: "c4020102"},
		{name: "ext8 empty code 1", input: "c70001", want: []byte{}, reencoded: "c400"},
		{name: "negative code", input: "d4fe09", want: []byte{9}, reencoded: "c40109"},
		{name: "inside a tuple", input: "d64091d40105", want: msgpack.Tuple{[]byte{5}}, reencoded: "d64091c40105"},
		{name: "dictionary stays ext", input: "d4507f", want: msgpack.Ext{Code: msgpack.ExtDictionary, Data: []byte{0x7f}}, reencoded: "d4507f"},
		{name: "tensor stays ext", input: "d4517f", want: msgpack.Ext{Code: msgpack.ExtTensor, Data: []byte{0x7f}}, reencoded: "d4517f"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.Unmarshal(unhex(t, tc.input))
			require.NoError(t, err)
			requireModelEqual(t, tc.want, got)
			again, err := msgpack.Marshal(got)
			require.NoError(t, err)
			require.Equal(t, tc.reencoded, hex.EncodeToString(again))
		})
	}
}

// TestTimestamp: ext −1 is msgpack's timestamp, which msgpack-python decodes itself and accepts only
// with a 4-, 8- or 12-byte payload and nanoseconds below 10^9; it writes the smallest form back.
func TestTimestamp(t *testing.T) {
	good := []struct {
		name, input string
		want        msgpack.Timestamp
		reencoded   string
	}{
		{name: "32-bit", input: "d6ff65535600", want: msgpack.Timestamp{Seconds: 1699960320}, reencoded: "d6ff65535600"},
		{name: "64-bit with nanoseconds", input: "d7ff0000000400000001", want: msgpack.Timestamp{Seconds: 1, Nanoseconds: 1}, reencoded: "d7ff0000000400000001"},
		{name: "64-bit without nanoseconds shrinks", input: "d7ff0000000000000005", want: msgpack.Timestamp{Seconds: 5}, reencoded: "d6ff00000005"},
		{name: "96-bit negative", input: "c70cff00000000ffffffffffffffff", want: msgpack.Timestamp{Seconds: -1}, reencoded: "c70cff00000000ffffffffffffffff"},
		{name: "96-bit small shrinks", input: "c70cff000000000000000000000007", want: msgpack.Timestamp{Seconds: 7}, reencoded: "d6ff00000007"},
		{name: "beyond 34 bits", input: "c70cff000000010000000400000000", want: msgpack.Timestamp{Seconds: 1 << 34, Nanoseconds: 1}, reencoded: "c70cff000000010000000400000000"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.Unmarshal(unhex(t, tc.input))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			again, err := msgpack.Marshal(got)
			require.NoError(t, err)
			require.Equal(t, tc.reencoded, hex.EncodeToString(again))
		})
	}
	bad := []struct{ name, input string }{
		{name: "1 byte", input: "d4ff00"},
		{name: "2 bytes", input: "d5ff0000"},
		{name: "16 bytes", input: "d8ff" + strings.Repeat("00", 16)},
		{name: "empty", input: "c700ff"},
		{name: "64-bit nanoseconds over 10^9", input: "d7ff" + "ee6b2800" + "00000000"},
		{name: "96-bit nanoseconds over 10^9", input: "c70cff3b9aca00" + "0000000000000000"},
		{name: "inside an array", input: "91d5ff0000"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := msgpack.Unmarshal(unhex(t, tc.input))
			require.ErrorIs(t, err, msgpack.ErrInvalidExt)
		})
	}
	_, err := msgpack.Marshal(msgpack.Timestamp{Nanoseconds: 1e9})
	require.ErrorIs(t, err, msgpack.ErrInvalidExt)
	// An Ext of the timestamp's code is written as given only when Unmarshal would read it back.
	exts := []struct {
		name    string
		payload string
		valid   bool
	}{
		{name: "Ext of a 4-byte timestamp", payload: "00000005", valid: true},
		{name: "Ext of a 12-byte timestamp", payload: "00000000ffffffffffffffff", valid: true},
		{name: "Ext of 2 bytes", payload: "0000"},
		{name: "Ext of no bytes", payload: ""},
		{name: "Ext of a 64-bit timestamp with nanoseconds over 10^9", payload: "ee6b280000000000"},
	}
	for _, tc := range exts {
		t.Run(tc.name, func(t *testing.T) {
			b, err := msgpack.Marshal(msgpack.Ext{Code: msgpack.ExtTimestamp, Data: unhex(t, tc.payload)})
			if !tc.valid {
				require.ErrorIs(t, err, msgpack.ErrInvalidExt)
				return
			}
			require.NoError(t, err)
			_, err = msgpack.Unmarshal(b)
			require.NoError(t, err)
		})
	}
}

func TestUnmarshalPrefix(t *testing.T) {
	input := unhex(t, "01 a161 92c0c3")
	var got []any
	for len(input) > 0 {
		v, rest, err := msgpack.UnmarshalPrefix(input)
		require.NoError(t, err)
		got = append(got, v)
		input = rest
	}
	requireModelEqual(t, []any{int64(1), "a", []any{nil, true}}, got)
	_, _, err := msgpack.UnmarshalPrefix(unhex(t, "92c0"))
	require.ErrorIs(t, err, msgpack.ErrTruncated)
}

func TestEqual(t *testing.T) {
	require.True(t, msgpack.Equal(int(1), uint8(1)))
	require.True(t, msgpack.Equal(float32(1.5), 1.5))
	require.True(t, msgpack.Equal(math.NaN(), math.NaN()))
	require.False(t, msgpack.Equal(0.0, math.Copysign(0, -1)))
	require.False(t, msgpack.Equal("a", []byte("a")))
	require.False(t, msgpack.Equal([]any{}, msgpack.Tuple{}))
	require.False(t, msgpack.Equal(struct{}{}, struct{}{}))
}
