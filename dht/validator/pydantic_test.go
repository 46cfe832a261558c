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

// TestPydanticVerdicts replays testdata/pydantic_v1.json: for each field type and value, the verdict
// of real pydantic v1 under hivemind's rule (parse, then parsed == input), produced by
// testdata/pydantic_v1.py. A regular record holding a dictionary is refused before pydantic runs
// (hivemind: "improperly serialized dictionary"), so the Go verdict for those is always false.
func TestPydanticVerdicts(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pydantic_v1.json"))
	require.NoError(t, err)
	var doc struct {
		Types map[string]validator.Type `json:"types"`
		Cases [][4]json.RawMessage      `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &doc))
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
	for i, c := range doc.Cases {
		var (
			typeName string
			subkey   *vectors.Value
			value    vectors.Value
			accepted bool
		)
		require.NoError(t, json.Unmarshal(c[0], &typeName))
		require.NoError(t, json.Unmarshal(c[1], &subkey))
		require.NoError(t, json.Unmarshal(c[2], &value))
		require.NoError(t, json.Unmarshal(c[3], &accepted))

		v, err := value.Go()
		require.NoError(t, err)
		rec := dht.Record{Key: key, Subkey: []byte(dht.TagRegular), Value: mustMarshal(t, v)}
		desc := fmt.Sprintf("case %d: %s value %s", i, typeName, c[2])
		if subkey != nil {
			sk, err := subkey.Go()
			require.NoError(t, err)
			rec.Subkey = mustMarshal(t, sk)
			desc += fmt.Sprintf(" subkey %s", c[1])
		} else if _, isMap := v.(*msgpack.Map); isMap {
			accepted = false
		}
		got, reason := schemas[typeName].Validate(rec)
		require.Equal(t, accepted, got, "%s: %s", desc, reason)
	}
}
