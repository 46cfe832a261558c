package validator_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// pydanticCaseLayout is the layout of a case of testdata/pydantic_v1.json, as its meta.case states it.
const pydanticCaseLayout = "[type name, subkey (typed value) or null, value (typed value), accepted]"

// pydanticCase is one case of testdata/pydantic_v1.json (pydanticCaseLayout).
type pydanticCase struct {
	Type     string
	Subkey   *vectors.Value // nil: a regular record
	Value    vectors.Value
	Accepted bool
}

// UnmarshalJSON implements json.Unmarshaler: a case is a list of exactly four members.
func (c *pydanticCase) UnmarshalJSON(b []byte) error {
	var members []json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return fmt.Errorf("case %.80s: %w", b, err)
	}
	if len(members) != 4 {
		return fmt.Errorf("case %.80s has %d members, want %s", b, len(members), pydanticCaseLayout)
	}
	for i, dst := range []any{&c.Type, &c.Subkey, &c.Value, &c.Accepted} {
		if err := json.Unmarshal(members[i], dst); err != nil {
			return fmt.Errorf("case %.80s, member %d: %w", b, i, err)
		}
	}
	return nil
}

// TestPydanticVerdicts replays testdata/pydantic_v1.json: for each field type and value, the verdict
// of real pydantic v1 under hivemind's rule (parse, then parsed == input), produced by
// testdata/pydantic_v1.py. A regular record holding a dictionary is refused before pydantic runs
// (hivemind: "improperly serialized dictionary"), so the Go verdict for those is always false.
func TestPydanticVerdicts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pydantic_v1.json"))
	require.NoError(t, err)
	var doc struct {
		Meta struct {
			Case string `json:"case"`
		} `json:"meta"`
		Types map[string]validator.Type `json:"types"`
		Cases []json.RawMessage         `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
	require.Equal(t, pydanticCaseLayout, doc.Meta.Case, "the layout of a case")
	require.NotEmpty(t, doc.Cases)

	schemas := map[string]*validator.Schema{}
	for name, typ := range doc.Types {
		s, err := validator.NewSchema(validator.SchemaConfig{Models: []validator.Model{{
			Name: "M", Fields: []validator.Field{{Name: "f", Type: typ}},
		}}})
		require.NoError(t, err, name)
		schemas[name] = s
	}
	key := dht.MustKey("f").ID().Bytes()
	for _, raw := range doc.Cases {
		t.Run(string(raw), func(t *testing.T) {
			var c pydanticCase
			require.NoError(t, json.Unmarshal(raw, &c))
			s, ok := schemas[c.Type]
			require.True(t, ok, "type %q is not in the file's types", c.Type)
			v, err := c.Value.Go()
			require.NoError(t, err)
			rec := dht.Record{Key: key, Subkey: []byte(dht.TagRegular), Value: mustMarshal(t, v)}
			want := c.Accepted
			if c.Subkey != nil {
				sk, err := c.Subkey.Go()
				require.NoError(t, err)
				rec.Subkey = mustMarshal(t, sk)
			} else if _, isMap := v.(*msgpack.Map); isMap {
				want = false // hivemind refuses a dictionary stored as a regular value
			}
			got, reason := s.Validate(rec)
			require.Equal(t, want, got, reason)
		})
	}
}
