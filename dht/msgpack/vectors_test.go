package msgpack_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// The lists of vectors/msgpack.json, each case read from its fields alone (vectors/README.md, "Case
// names are labels, not keys"). The dictionary_dht_value list belongs to package dht's storage.

type valueCase struct {
	Value            *vectors.Value `json:"value"`
	ValueRecipeTyped *vectors.Value `json:"value_recipe_typed"`
	Packed           vectors.Blob   `json:"packed_hex"`
	Loads            *vectors.Value `json:"loads"`
	Error            *vectors.Error `json:"error"`
	Roundtrip        bool           `json:"roundtrip"`
}

type dumpsErrorCase struct {
	ValuePython string         `json:"value_python"`
	PythonType  string         `json:"python_type"`
	Value       *vectors.Value `json:"value"`
	Error       vectors.Error  `json:"error"`
}

type decodeCase struct {
	Input vectors.HexBytes `json:"input_hex"`
	Loads *vectors.Value   `json:"loads"`
	Error *vectors.Error   `json:"error"`
}

type vweCase struct {
	Value      vectors.HexBytes `json:"value_hex"`
	Expiration vectors.Float    `json:"expiration"`
	Error      vectors.Error    `json:"error"`
}

// errorKinds maps the vectors' error kinds to the sentinels of this package (and, for what hivemind's
// ext hook for 0x50 raises, of package dht).
var errorKinds = vectors.Kinds{
	"int_out_of_range":           msgpack.ErrIntOutOfRange,
	"unsupported_type":           msgpack.ErrUnsupportedType,
	"map_key_type":               msgpack.ErrMapKeyType,
	"invalid_utf8":               msgpack.ErrInvalidUTF8,
	"truncated":                  msgpack.ErrTruncated,
	"extra_data":                 msgpack.ErrExtraData,
	"invalid_ext":                msgpack.ErrInvalidExt,
	"invalid_dictionary_payload": dht.ErrInvalidValue,
}

func goValue(t *testing.T, v vectors.Value) any {
	t.Helper()
	g, err := v.Go()
	require.NoError(t, err)
	return g
}

// hivemindLoads is MSGPackSerializer.loads: msgpack with hivemind's ext hooks. The tuple (0x40) and
// unknown codes are msgpack.Unmarshal's; a DictionaryDHTValue (0x50) is unpacked by package dht and
// packed again with every entry, so that two dictionaries compare by content (the typed form of a
// dictionary in the vectors packs the same way: see vectors.Value.Go).
func hivemindLoads(data []byte) (any, error) {
	v, err := msgpack.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return unpackDictionaries(v)
}

func unpackDictionaries(v any) (any, error) {
	switch x := v.(type) {
	case msgpack.Ext:
		if x.Code != msgpack.ExtDictionary {
			return x, nil
		}
		d, err := dht.UnpackDictionaryPayload(x.Data)
		if err != nil {
			return nil, err
		}
		d.SetFrozen(true) // every entry, expired or not, as unpackb keeps them
		return msgpack.Unmarshal(d.Pack(0))
	case []any:
		return unpackItems(x)
	case msgpack.Tuple:
		items, err := unpackItems(x)
		return msgpack.Tuple(items), err
	case *msgpack.Map:
		out := msgpack.NewMap()
		for k, val := range x.All() {
			u, err := unpackDictionaries(val)
			if err != nil {
				return nil, err
			}
			out.Set(k, u)
		}
		return out, nil
	}
	return v, nil
}

func unpackItems(items []any) ([]any, error) {
	out := make([]any, len(items))
	for i, it := range items {
		u, err := unpackDictionaries(it)
		if err != nil {
			return nil, err
		}
		out[i] = u
	}
	return out, nil
}

func TestVectorValues(t *testing.T) {
	vectors.Run(t, "msgpack.json", "values", func(t *testing.T, tc valueCase) {
		typed := tc.Value
		if typed == nil {
			// A large input is given in a compact typed form (repeat, counting_map).
			typed = tc.ValueRecipeTyped
		}
		require.NotNil(t, typed, "a case needs value or value_recipe_typed")
		in, err := typed.Go()
		if err != nil {
			// A value the Go model cannot hold: an int-keyed map, which hivemind encodes but no
			// hivemind peer can read back (strict_map_key); spec §6.1 says Go avoids producing such
			// maps. The decoder refuses the recorded bytes as hivemind's does.
			require.NotNil(t, tc.Error, "only a value hivemind cannot read back may lack a Go form: %v", err)
			errorKinds.Require(t, *tc.Error, err)
			_, err = hivemindLoads(tc.Packed.Exact())
			errorKinds.Require(t, *tc.Error, err)
			return
		}

		packed, err := msgpack.Marshal(in)
		require.NoError(t, err)
		require.NoError(t, tc.Packed.Match(packed), "packed")

		got, err := hivemindLoads(packed)
		if tc.Error != nil {
			errorKinds.Require(t, *tc.Error, err)
			return
		}
		require.NoError(t, err)
		if tc.Loads != nil {
			requireModelEqual(t, goValue(t, *tc.Loads), got)
		}
		if tc.Roundtrip {
			requireModelEqual(t, in, got)
		}
	})
}

// intSubclass stands in for a Python int subclass: strict_types refuses subclasses of the types it
// packs, and the Go encoder refuses named types.
type intSubclass int64

// valueWithExpiration stands in for hivemind's ValueWithExpiration, which has no wire form.
type valueWithExpiration struct {
	Value      []byte
	Expiration float64
}

// dumpsStandIns maps the python_type of a value hivemind's serializer refuses, where the case gives
// no typed form of it, to a Go value the encoder must refuse in the same way.
var dumpsStandIns = map[string]any{
	"set":                 map[int64]struct{}{1: {}, 2: {}},
	"frozenset":           map[int64]struct{}{1: {}},
	"complex":             complex(1, 2),
	"int_subclass":        intSubclass(1),
	"ValueWithExpiration": valueWithExpiration{Value: []byte("v"), Expiration: 1},
}

func TestVectorDumpsErrors(t *testing.T) {
	vectors.Run(t, "msgpack.json", "dumps_errors", func(t *testing.T, tc dumpsErrorCase) {
		var in any
		if tc.Value != nil { // an out-of-range int, alone or inside a tuple
			in = goValue(t, *tc.Value)
		} else {
			var ok bool
			in, ok = dumpsStandIns[tc.PythonType]
			require.True(t, ok, "no Go stand-in for python_type %q (%s)", tc.PythonType, tc.ValuePython)
		}
		out, err := msgpack.AppendMarshal([]byte("prefix"), in)
		errorKinds.Require(t, tc.Error, err)
		require.Equal(t, "prefix", string(out), "a failed append leaves dst as it was")
	})
}

func TestVectorDecodeOnly(t *testing.T) {
	vectors.Run(t, "msgpack.json", "decode_only", func(t *testing.T, tc decodeCase) {
		got, err := hivemindLoads(tc.Input)
		if tc.Error != nil {
			errorKinds.Require(t, *tc.Error, err)
			return
		}
		require.NoError(t, err)
		require.NotNil(t, tc.Loads, "a case needs loads or error")
		requireModelEqual(t, goValue(t, *tc.Loads), got)
	})
}

func TestVectorValueWithExpiration(t *testing.T) {
	vectors.Run(t, "msgpack.json", "value_with_expiration", func(t *testing.T, tc vweCase) {
		// A (value, expiration) pair has no wire form: the two travel as separate protobuf fields.
		// Any Go pair type is refused, like hivemind's ValueWithExpiration.
		pair := valueWithExpiration{Value: tc.Value, Expiration: tc.Expiration.Value()}
		_, err := msgpack.Marshal(pair)
		errorKinds.Require(t, tc.Error, err)
		_, err = msgpack.Marshal(&pair)
		errorKinds.Require(t, tc.Error, err)
		// The value itself is ordinary msgpack.
		_, err = msgpack.Unmarshal(tc.Value)
		require.NoError(t, err)
	})
}

// requireModelEqual asserts that got is want with the same Go types throughout (int64 against
// uint64 included), floats compared by bits and maps in the same order.
func requireModelEqual(t *testing.T, want, got any) {
	t.Helper()
	if d := modelDiff(want, got, "value"); d != "" {
		t.Fatal(d)
	}
}

func modelDiff(want, got any, path string) string {
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", got) {
		return fmt.Sprintf("%s: type %T, want %T (%v vs %v)", path, got, want, got, want)
	}
	switch w := want.(type) {
	case float64:
		if math.Float64bits(w) != math.Float64bits(got.(float64)) {
			return fmt.Sprintf("%s: float %v, want %v", path, got, w)
		}
	case []byte:
		if string(w) != string(got.([]byte)) {
			return fmt.Sprintf("%s: bytes %x, want %x", path, got, w)
		}
	case []any:
		return seqDiff(w, got.([]any), path)
	case msgpack.Tuple:
		return seqDiff(w, got.(msgpack.Tuple), path)
	case *msgpack.Map:
		g := got.(*msgpack.Map)
		if w.Len() != g.Len() {
			return fmt.Sprintf("%s: map of %d entries, want %d", path, g.Len(), w.Len())
		}
		var wk, wv, gk, gv []any
		for k, v := range w.All() {
			wk, wv = append(wk, k), append(wv, v)
		}
		for k, v := range g.All() {
			gk, gv = append(gk, k), append(gv, v)
		}
		if d := seqDiff(wk, gk, path+".keys"); d != "" {
			return d
		}
		return seqDiff(wv, gv, path+".values")
	case msgpack.Timestamp:
		if w != got.(msgpack.Timestamp) {
			return fmt.Sprintf("%s: timestamp %v, want %v", path, got, w)
		}
	case msgpack.Ext:
		g := got.(msgpack.Ext)
		if w.Code != g.Code || string(w.Data) != string(g.Data) {
			return fmt.Sprintf("%s: ext %d %x, want %d %x", path, g.Code, g.Data, w.Code, w.Data)
		}
	default:
		if want != got {
			return fmt.Sprintf("%s: %v, want %v", path, got, want)
		}
	}
	return ""
}

func seqDiff(want, got []any, path string) string {
	if len(want) != len(got) {
		return fmt.Sprintf("%s: %d items, want %d", path, len(got), len(want))
	}
	for i := range want {
		if d := modelDiff(want[i], got[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
			return d
		}
	}
	return ""
}

func TestModelDiffCatchesDifferences(t *testing.T) {
	cases := []struct {
		name      string
		want, got any
	}{
		{name: "int kinds", want: int64(1), got: uint64(1)},
		{name: "nan sign", want: math.NaN(), got: -math.NaN()},
		{name: "zero sign", want: 0.0, got: math.Copysign(0, -1)},
		{name: "list vs tuple", want: []any{}, got: msgpack.Tuple{}},
		{name: "map order", want: msgpack.MapOf("a", 1, "b", 2), got: msgpack.MapOf("b", 2, "a", 1)},
		{name: "str vs bytes key", want: msgpack.MapOf("a", 1), got: msgpack.MapOf([]byte("a"), 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEmpty(t, modelDiff(tc.want, tc.got, "v"))
		})
	}
	require.Empty(t, modelDiff(math.NaN(), math.NaN(), "v"))
}
