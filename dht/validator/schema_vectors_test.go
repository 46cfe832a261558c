package validator_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// schemaVectors is vectors/schema.json.
type schemaVectors struct {
	Validators []json.RawMessage `json:"validators"`
	Cases      []struct {
		Name           string           `json:"name"`
		Validator      string           `json:"validator"`
		RawKey         string           `json:"raw_key"`
		KeyID          vectors.HexBytes `json:"key_id_hex"`
		Subkey         vectors.Value    `json:"subkey"`
		SubkeyHex      vectors.HexBytes `json:"subkey_hex"`
		Value          vectors.Value    `json:"value"`
		ValueHex       vectors.HexBytes `json:"value_hex"`
		Expiration     vectors.Float    `json:"expiration"`
		SchemaValidate *bool            `json:"schema_validate"`
		Error          *vectors.Error   `json:"error"`
		Composite      *struct {
			SignedValue      vectors.HexBytes `json:"signed_value_hex"`
			ValidateSigned   bool             `json:"validate_signed"`
			ValidateUnsigned bool             `json:"validate_unsigned"`
			StripValue       vectors.HexBytes `json:"strip_value_hex"`
		} `json:"composite"`
	} `json:"cases"`
	TrainerMetrics []struct {
		Name              string           `json:"name"`
		RawKey            string           `json:"raw_key"`
		ValueSource       vectors.Value    `json:"value_source"`
		Record            vecRecord        `json:"record"`
		UnsignedValue     vectors.HexBytes `json:"unsigned_value_hex"`
		CompositeValidate bool             `json:"composite_validate"`
	} `json:"trainer_metrics_records"`
	TrainerProgress []struct {
		Name              string           `json:"name"`
		RawKey            string           `json:"raw_key"`
		Record            vecRecord        `json:"record"`
		StrippedValue     vectors.HexBytes `json:"stripped_value_hex"`
		DecodedValue      vectors.Value    `json:"decoded_value"`
		CompositeValidate bool             `json:"composite_validate"`
	} `json:"trainer_progress_records"`
}

// vectorValidator is one entry of schema.json "validators": a SchemaConfig plus derived key data.
type vectorValidator struct {
	Name    string `json:"name"`
	Schemas []struct {
		Prefix *string `json:"prefix"`
		Fields []struct {
			Name   string           `json:"name"`
			RawKey string           `json:"raw_key"`
			KeyID  vectors.HexBytes `json:"key_id_hex"`
		} `json:"fields"`
	} `json:"schemas"`
}

type schemaFixture struct {
	vectors schemaVectors
	configs map[string]validator.SchemaConfig
	schemas map[string]*validator.Schema
}

func loadSchemaVectors(t testing.TB) schemaFixture {
	t.Helper()
	f := schemaFixture{configs: map[string]validator.SchemaConfig{}, schemas: map[string]*validator.Schema{}}
	vectors.Load(t, "schema.json", &f.vectors)
	for _, raw := range f.vectors.Validators {
		var head vectorValidator
		require.NoError(t, json.Unmarshal(raw, &head))
		var cfg validator.SchemaConfig
		require.NoError(t, json.Unmarshal(raw, &cfg), head.Name)
		s, err := validator.NewSchema(cfg)
		require.NoError(t, err, head.Name)
		f.configs[head.Name] = cfg
		f.schemas[head.Name] = s
	}
	require.NotEmpty(t, f.schemas)
	return f
}

// TestSchemaVectorValidators: the vectors' validator descriptions decode into SchemaConfig, their keys
// are the ones a Schema derives, they survive a JSON round trip, and the ready-made constructors
// describe exactly albert's and ProgressTracker's validators.
func TestSchemaVectorValidators(t *testing.T) {
	f := loadSchemaVectors(t)
	for _, raw := range f.vectors.Validators {
		var head vectorValidator
		require.NoError(t, json.Unmarshal(raw, &head))
		t.Run(head.Name, func(t *testing.T) {
			cfg := f.configs[head.Name]
			require.Len(t, cfg.Models, len(head.Schemas))
			for i, m := range head.Schemas {
				if m.Prefix == nil {
					require.Empty(t, cfg.Models[i].Prefix)
				}
				for j, field := range m.Fields {
					require.Equal(t, field.Name, cfg.Models[i].Fields[j].Name)
					require.Equal(t, field.RawKey, cfg.Models[i].RawKey(field.Name))
					require.Equal(t, hex.EncodeToString(field.KeyID), dht.MustKey(field.RawKey).ID().String())
				}
			}
			data, err := json.Marshal(cfg)
			require.NoError(t, err)
			var back validator.SchemaConfig
			require.NoError(t, json.Unmarshal(data, &back))
			require.Equal(t, cfg, back)
			require.Equal(t, cfg, f.schemas[head.Name].Config())
		})
	}
	require.Equal(t, f.configs["albert_metrics"], validator.AlbertMetricsSchema("albert"))
	require.Equal(t, f.configs["albert_progress"], validator.ProgressSchema("albert"))
}

func TestSchemaVectorCases(t *testing.T) {
	f := loadSchemaVectors(t)
	owner := loadRSA(t).validators["owner"]
	for _, tc := range f.vectors.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			s := f.schemas[tc.Validator]
			require.NotNil(t, s, "validator %q", tc.Validator)
			require.Nil(t, tc.Error, "no schema case raises")
			require.NotNil(t, tc.SchemaValidate)
			require.Equal(t, hex.EncodeToString(tc.KeyID), dht.MustKey(tc.RawKey).ID().String())

			// Our encoder writes the same record bytes as hivemind for the typed inputs.
			subkey, err := tc.Subkey.Go()
			require.NoError(t, err)
			value, err := tc.Value.Go()
			require.NoError(t, err)
			require.Equal(t, []byte(tc.SubkeyHex), mustMarshal(t, subkey))
			require.Equal(t, []byte(tc.ValueHex), mustMarshal(t, value))

			rec := dht.Record{Key: tc.KeyID, Subkey: tc.SubkeyHex, Value: tc.ValueHex, Expiration: tc.Expiration.Value()}
			got, reason := s.Validate(rec)
			require.Equal(t, *tc.SchemaValidate, got, "reason: %s", reason)
			if !got {
				require.NotEmpty(t, reason)
			}

			if tc.Composite == nil {
				return
			}
			// CompositeValidator([schema, RSASignatureValidator(owner)]).
			c := validator.NewComposite(s, owner)
			signed := rec
			signed.Value = tc.Composite.SignedValue
			ok, reason := c.Validate(signed)
			require.Equal(t, tc.Composite.ValidateSigned, ok, "hivemind's signed value: %s", reason)
			ok, reason = c.Validate(rec)
			require.Equal(t, tc.Composite.ValidateUnsigned, ok, "unsigned: %s", reason)
			require.Equal(t, []byte(tc.Composite.StripValue), c.StripValue(signed))

			// Our own signature (PSS is randomized: verify, don't compare).
			ours := rec
			ours.Value = c.SignValue(rec)
			require.True(t, bytes.HasPrefix(ours.Value, append(bytes.Clone(rec.Value), "[signature:"...)))
			ok, reason = c.Validate(ours)
			require.Equal(t, tc.Composite.ValidateSigned, ok, "our signed value: %s", reason)
			require.Equal(t, []byte(rec.Value), c.StripValue(ours))
		})
	}
}

func TestSchemaVectorTrainerRecords(t *testing.T) {
	f := loadSchemaVectors(t)
	owner := loadRSA(t).validators["owner"]
	for _, tc := range f.vectors.TrainerMetrics {
		t.Run(tc.Name, func(t *testing.T) {
			s, err := validator.NewSchema(validator.AlbertMetricsSchema("albert"))
			require.NoError(t, err)
			c := validator.NewComposite(owner, s)
			rec := tc.Record.record()
			require.Equal(t, dht.MustKey(tc.RawKey).ID().Bytes(), rec.Key)
			ok, reason := c.Validate(rec)
			require.Equal(t, tc.CompositeValidate, ok, reason)
			stripped := c.StripValue(rec)
			require.Equal(t, []byte(tc.UnsignedValue), stripped)
			want, err := tc.ValueSource.Go()
			require.NoError(t, err)
			require.Equal(t, []byte(stripped), mustMarshal(t, want))
		})
	}
	for _, tc := range f.vectors.TrainerProgress {
		t.Run(tc.Name, func(t *testing.T) {
			s, err := validator.NewSchema(validator.ProgressSchema("albert"))
			require.NoError(t, err)
			c := validator.NewComposite(s, owner)
			rec := tc.Record.record()
			require.Equal(t, dht.MustKey(tc.RawKey).ID().Bytes(), rec.Key)
			ok, reason := c.Validate(rec)
			require.Equal(t, tc.CompositeValidate, ok, reason)
			stripped := c.StripValue(rec)
			require.Equal(t, []byte(tc.StrippedValue), stripped)
			decoded, err := msgpack.Unmarshal(stripped)
			require.NoError(t, err)
			want, err := tc.DecodedValue.Go()
			require.NoError(t, err)
			require.True(t, msgpack.Equal(want, decoded))

			// A tampered record fails: the schema sees the value only after the signature checked.
			bad := rec
			bad.Expiration++
			ok, _ = c.Validate(bad)
			require.False(t, ok)
		})
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}
