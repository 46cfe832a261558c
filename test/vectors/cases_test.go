package vectors

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

func TestBlobForms(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 300)
	sum := sha256.Sum256(big)
	large := map[string]any{
		"packed_len": len(big), "packed_sha256_hex": hex.EncodeToString(sum[:]),
		"packed_head_hex": hex.EncodeToString(big[:64]), "packed_tail_hex": hex.EncodeToString(big[len(big)-16:]),
		"other_hex": "00ff", "empty_hex": "",
	}
	dir := t.TempDir()
	data, err := json.Marshal(map[string]any{"cases": []any{large}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.json"), data, 0o600))

	var got struct {
		Cases []struct {
			Packed  Blob `json:"packed_hex"`
			Other   Blob `json:"other_hex"`
			Empty   Blob `json:"empty_hex"`
			Missing Blob `json:"missing_hex"`
		} `json:"cases"`
	}
	require.NoError(t, load(dir, "f.json", &got))
	c := got.Cases[0]
	require.True(t, c.Packed.Large())
	require.Equal(t, len(big), c.Packed.Len())
	require.NoError(t, c.Packed.Match(big))
	require.Equal(t, big[:64], c.Packed.Head())
	require.Equal(t, big[len(big)-16:], c.Packed.Tail())
	tampered := bytes.Clone(big)
	tampered[100] ^= 1
	require.ErrorContains(t, c.Packed.Match(tampered), "sha256")
	require.ErrorContains(t, c.Packed.Match(big[:100]), "bytes, want")

	require.False(t, c.Other.Large())
	require.NoError(t, c.Other.Match([]byte{0, 0xff}))
	require.Error(t, c.Other.Match([]byte{0}))
	require.True(t, c.Empty.Present())
	require.False(t, c.Missing.Present())
	require.NoError(t, c.Empty.Match(nil), "empty and absent compare equal")
	require.NoError(t, c.Missing.Match([]byte{}))

	var exact struct {
		Cases []struct {
			Packed HexBytes `json:"packed_hex"`
		} `json:"cases"`
	}
	require.ErrorContains(t, load(dir, "f.json", &exact), "large form", "exact bytes cannot be read from a large form")
}

func TestCompactForms(t *testing.T) {
	cases := []struct {
		name string
		json string
		want any
	}{
		{name: "repeat str", json: `{"t":"repeat","as":"str","unit":{"t":"str","v":"é","utf8_hex":"c3a9"},"count":3}`, want: "ééé"},
		{name: "repeat bytes", json: `{"t":"repeat","as":"bytes","unit":{"t":"bytes","hex":"0102"},"count":2}`, want: []byte{1, 2, 1, 2}},
		{name: "repeat list", json: `{"t":"repeat","as":"list","unit":{"t":"int","v":"7"},"count":2}`, want: []any{int64(7), int64(7)}},
		{name: "counting map", json: `{"t":"counting_map","key_len":2,"count":3,"value":{"t":"nil"}}`,
			want: msgpack.MapOf([]byte{0, 0}, nil, []byte{0, 1}, nil, []byte{0, 2}, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v Value
			require.NoError(t, json.Unmarshal([]byte(tc.json), &v))
			got, err := v.Go()
			require.NoError(t, err)
			want, err := msgpack.Marshal(tc.want)
			require.NoError(t, err)
			packed, err := v.Msgpack()
			require.NoError(t, err)
			require.Equal(t, want, packed, "%v", got)
		})
	}
	for _, bad := range []string{
		`{"t":"repeat","as":"map","unit":{"t":"nil"},"count":1}`,
		`{"t":"repeat","as":"str","unit":{"t":"str","v":"a","utf8_hex":"61"},"count":-1}`,
		`{"t":"counting_map","key_len":1,"count":257,"value":{"t":"nil"}}`,
		`{"t":"counting_map","key_len":0,"count":1,"value":{"t":"nil"}}`,
	} {
		var v Value
		require.Error(t, json.Unmarshal([]byte(bad), &v), bad)
	}
	var mismatched Value
	require.NoError(t, json.Unmarshal([]byte(`{"t":"repeat","as":"bytes","unit":{"t":"int","v":"1"},"count":1}`), &mismatched))
	_, err := mismatched.Go()
	require.Error(t, err, "a bytes repeat of an int unit")
}

func TestDictionaryPacksAsHivemind(t *testing.T) {
	// vectors/msgpack.json two_str_subkeys: hivemind's packb of {k1: 01 until .25, k2: a178 until 10.5}.
	const js = `{"t":"dictionary_dht_value","maxsize":{"t":"float","repr":"inf","bits":"7ff0000000000000"},
		"latest_expiration_time":{"repr":"1700000010.5","bits":"41d954fc42a00000"},"items":[
		{"subkey":{"t":"str","v":"k1","utf8_hex":"6b31"},"value_hex":"01","expiration":{"repr":"1700000000.25","bits":"41d954fc40100000"}},
		{"subkey":{"t":"str","v":"k2","utf8_hex":"6b32"},"value_hex":"a178","expiration":{"repr":"1700000010.5","bits":"41d954fc42a00000"}}]}`
	var v Value
	require.NoError(t, json.Unmarshal([]byte(js), &v))
	packed, err := v.Msgpack()
	require.NoError(t, err)
	require.Equal(t, "c7355093cb7ff0000000000000cb41d954fc42a000009293a26b31c40101cb41d954fc4010000093a26b32c402a178cb41d954fc42a00000", hex.EncodeToString(packed))
}

func TestCasesReportUnreadableCases(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvDir, dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f.json"), []byte(`{"meta":{},"list":[
		{"name":"good","note":"","n":1},{"name":"bad","note":"","n":"x"}]}`), 0o600))
	cases := Cases[struct {
		N int `json:"n"`
	}](t, "f.json", "list")
	require.Len(t, cases, 2)
	require.NoError(t, cases[0].Err)
	require.Equal(t, 1, cases[0].Data.N)
	require.ErrorContains(t, cases[1].Err, "case bad")
}

func TestKinds(t *testing.T) {
	errA := errors.New("a")
	k := Kinds{"a_kind": errA}
	require.NoError(t, k.Match(Error{Kind: "a_kind"}, fmt.Errorf("wrapped: %w", errA)))
	require.ErrorContains(t, k.Match(Error{Kind: "a_kind"}, errors.New("other")), "want kind")
	require.ErrorContains(t, k.Match(Error{Kind: "a_kind"}, nil), "no error")
	require.ErrorContains(t, k.Match(Error{Kind: "b_kind", Python: "ValueError()"}, errA), "has no Go error")
}

func TestResolve(t *testing.T) {
	names := []string{"x", "y", "z"}
	never := func(int) int { panic("a named entry needs no behaviour check") }
	i, err := Resolve("y", names, never)
	require.NoError(t, err)
	require.Equal(t, 1, i)

	// Relabelled: the reference names nothing; entry z explains every citing case.
	i, err = Resolve("old", names, func(i int) int { return []int{2, 1, 0}[i] })
	require.NoError(t, err)
	require.Equal(t, 2, i)

	_, err = Resolve("old", names, func(i int) int { return []int{2, 1, 3}[i] })
	require.ErrorContains(t, err, `closest: "y", 1 cases differ`)
}

func TestOrder(t *testing.T) {
	// A recorded sequence: step 2 must follow step 0, step 1 must follow step 2; step 3 fits anywhere.
	after := map[int]int{2: 0, 1: 2}
	replays := func(order []int) bool {
		pos := map[int]int{}
		for p, s := range order {
			pos[s] = p
		}
		for s, p := range pos {
			if before, ok := after[s]; ok {
				if bp, seen := pos[before]; !seen || bp > p {
					return false
				}
			}
		}
		return true
	}
	order, err := Order(4, 1000, replays)
	require.NoError(t, err)
	require.True(t, replays(order))
	require.Len(t, order, 4)
	sorted := slices.Clone(order)
	slices.Sort(sorted)
	require.Equal(t, []int{0, 1, 2, 3}, sorted)

	_, err = Order(3, 1000, func(order []int) bool { return len(order) < 2 })
	require.ErrorContains(t, err, "longest prefix that replays: 1 steps")
	_, err = Order(6, 5, func(order []int) bool { return len(order) < 6 })
	require.ErrorContains(t, err, "within 5 replays")
}

func TestFixed(t *testing.T) {
	outcome := &struct{ Result bool }{Result: true}
	tests := []struct {
		name       string
		portShould string
		fixed      *struct{ Result bool }
		want       *struct{ Result bool }
		wantErr    bool
	}{
		{name: "absent", want: nil},
		{name: "keep", portShould: "keep", fixed: outcome, want: nil},
		{name: "fix", portShould: "fix", fixed: outcome, want: outcome},
		{name: "fix without expected_fixed", portShould: "fix", wantErr: true},
		{name: "unknown", portShould: "mend", fixed: outcome, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Fixed(tc.portShould, tc.fixed)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Same(t, tc.want, got)
		})
	}
}
