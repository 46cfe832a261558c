package vectors

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEveryFileDecodes walks every vector file and decodes every typed value, float, hex field and
// large form it holds, so a malformed file (or a gap in this decoder) fails here first.
func TestEveryFileDecodes(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(Dir(t), "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var root any
			require.NoError(t, load(filepath.Dir(f), filepath.Base(f), &root))
			counts := map[string]int{}
			walk(t, root, "", counts)
			t.Logf("decoded %v", counts)
		})
	}
}

func walk(t *testing.T, node any, field string, counts map[string]int) {
	t.Helper()
	switch n := node.(type) {
	case map[string]any:
		raw, _ := json.Marshal(n)
		if strings.HasSuffix(field, "_hex") {
			var b Blob
			require.NoError(t, json.Unmarshal(raw, &b), "large form %s", field)
			require.True(t, b.Large())
			counts["large"]++
			return
		}
		if _, ok := n["t"]; ok {
			var v Value
			require.NoError(t, json.Unmarshal(raw, &v), "typed value %s", raw)
			counts["typed"]++
			return
		}
		if _, ok := n["bits"]; ok {
			var f Float
			require.NoError(t, json.Unmarshal(raw, &f), "float %s", raw)
			counts["float"]++
			return
		}
		for k, v := range n {
			walk(t, v, k, counts)
		}
	case []any:
		for _, v := range n {
			walk(t, v, field, counts)
		}
	case string:
		if strings.HasSuffix(field, "_hex") {
			raw, _ := json.Marshal(n)
			var h HexBytes
			require.NoError(t, json.Unmarshal(raw, &h), "field %s", field)
			counts["hex"]++
		}
	}
}

func TestTypedValues(t *testing.T) {
	cases := []struct {
		name string
		json string
		want Value
	}{
		{name: "bytes", json: `{"t":"bytes","hex":"00ff"}`, want: Value{Kind: KindBytes, Bytes: []byte{0, 255}}},
		{name: "str invalid utf8", json: `{"t":"str","v":"?","utf8_hex":"ff"}`, want: Value{Kind: KindStr, Str: "\xff"}},
		{name: "bool", json: `{"t":"bool","v":true}`, want: Value{Kind: KindBool, Bool: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v Value
			require.NoError(t, json.Unmarshal([]byte(tc.json), &v))
			require.Equal(t, tc.want, v)
		})
	}
	var big Value
	require.NoError(t, json.Unmarshal([]byte(`{"t":"int","v":"18446744073709551616"}`), &big))
	require.Equal(t, "18446744073709551616", big.Int.String())
	var f Value
	require.NoError(t, json.Unmarshal([]byte(`{"t":"float","repr":"-0.0","bits":"8000000000000000"}`), &f))
	require.Equal(t, uint64(1)<<63, f.Float.Bits())

	for _, bad := range []string{`{"t":"bytes","hex":"0"}`, `{"t":"bytes","hex":"AB"}`, `{"t":"what"}`, `{"t":"int","v":"1.5"}`} {
		var v Value
		require.Error(t, json.Unmarshal([]byte(bad), &v), bad)
	}
}
