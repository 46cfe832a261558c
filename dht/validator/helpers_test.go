package validator_test

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// resolution is the entry a reference value of the vectors resolved to (index into the list of
// entries), or why it did not resolve.
type resolution struct {
	index int
	err   error
}

// resolveRefs resolves every value of a reference field (rsa_validator.json records' validator_key,
// schema.json cases' validator) once: the cases are grouped by the value they cite, and each group
// goes to vectors.Resolve, which takes the entry of that name or, in a relabelled copy where no entry
// has it, the entry that explains every case of the group (explains(i, c) for all of them). Cases
// that did not decode are left out; they fail on their own.
func resolveRefs[C any](names []string, cases []vectors.Case[C], ref func(C) string, explains func(entry int, c C) bool) map[string]resolution {
	groups := map[string][]C{}
	for _, c := range cases {
		if c.Err == nil {
			groups[ref(c.Data)] = append(groups[ref(c.Data)], c.Data)
		}
	}
	out := make(map[string]resolution, len(groups))
	for value, group := range groups {
		i, err := vectors.Resolve(value, names, func(i int) int {
			n := 0
			for _, c := range group {
				if !explains(i, c) {
					n++
				}
			}
			return n
		})
		out[value] = resolution{index: i, err: err}
	}
	return out
}

// requireBytes compares byte strings by content: nil and empty are the same byte string (the vectors
// carry no presence flag for these fields).
func requireBytes(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if w, g := hex.EncodeToString(want), hex.EncodeToString(got); w != g {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}
