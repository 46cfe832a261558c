package validator_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// schemaMeta is the part of schema.json's meta the tests read.
type schemaMeta struct {
	// OwnerMarkerText is the owner marker of the key that signs every record of the file.
	OwnerMarkerText string `json:"owner_marker_text"`
	// OwnerKey says which key of rsa_validator.json that is (a sentence naming it in quotes).
	OwnerKey string `json:"owner_key"`
}

// schemaValidatorEntry is one entry of schema.json "validators": the description a SchemaConfig
// decodes from, plus the derived keys of every field.
type schemaValidatorEntry struct {
	schemaValidatorView
	Config validator.SchemaConfig
}

type schemaValidatorView struct {
	Schemas []struct {
		Model  string  `json:"model"`
		Prefix *string `json:"prefix"`
		Fields []struct {
			Name   string           `json:"name"`
			RawKey string           `json:"raw_key"`
			KeyID  vectors.HexBytes `json:"key_id_hex"`
		} `json:"fields"`
	} `json:"schemas"`
}

// UnmarshalJSON implements json.Unmarshaler: the entry is read both as its own view and as a
// SchemaConfig.
func (e *schemaValidatorEntry) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &e.schemaValidatorView); err != nil {
		return err
	}
	return json.Unmarshal(b, &e.Config)
}

// schemaValidator is a validator of schema.json, built.
type schemaValidator struct {
	name   string // the entry's label
	entry  schemaValidatorEntry
	schema *validator.Schema
}

// holds reports whether the validator has a model named model with a field whose DHT key is rawKey.
func (v schemaValidator) holds(model, rawKey string) (validator.Model, bool) {
	for _, m := range v.entry.Config.Models {
		if m.Name != model {
			continue
		}
		for _, f := range m.Fields {
			if m.RawKey(f.Name) == rawKey {
				return m, true
			}
		}
	}
	return validator.Model{}, false
}

// schemaComposite is a case's CompositeValidator([schema, RSASignatureValidator(owner)]) outcome.
type schemaComposite struct {
	SignedValue      vectors.HexBytes `json:"signed_value_hex"`
	ValidateSigned   bool             `json:"validate_signed"`
	ValidateUnsigned bool             `json:"validate_unsigned"`
	StripValue       vectors.HexBytes `json:"strip_value_hex"`
}

// schemaCase is one case of schema.json "cases".
type schemaCase struct {
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
	Composite      *schemaComposite `json:"composite"`
	PortShould     string           `json:"port_should"`
	ExpectedFixed  *struct {
		SchemaValidate *bool            `json:"schema_validate"`
		Composite      *schemaComposite `json:"composite"`
	} `json:"expected_fixed"`
}

func (c schemaCase) record() dht.Record {
	return dht.Record{Key: c.KeyID, Subkey: c.SubkeyHex, Value: c.ValueHex, Expiration: c.Expiration.Value()}
}

// outcome is the schema verdict and composite outcome the port must produce for the case.
func (c schemaCase) outcome() (bool, *schemaComposite, error) {
	fixed, err := vectors.Fixed(c.PortShould, c.ExpectedFixed)
	if err != nil {
		return false, nil, err
	}
	if fixed != nil {
		// A fixed hivemind quirk: the port must produce what the fixed hivemind produced.
		if fixed.SchemaValidate == nil {
			return false, nil, errors.New("port_should is fix but expected_fixed has no schema_validate")
		}
		composite := c.Composite
		if fixed.Composite != nil {
			composite = fixed.Composite
		}
		return *fixed.SchemaValidate, composite, nil
	}
	switch {
	case c.Error != nil:
		// SchemaValidator.validate raised. The port never raises: such a record is invalid.
		return false, c.Composite, nil
	case c.SchemaValidate == nil:
		return false, nil, errors.New("neither schema_validate nor error")
	}
	return *c.SchemaValidate, c.Composite, nil
}

// schemaKinds maps error kinds of schema.json cases to Go errors. hivemind's SchemaValidator raised
// on no case of this capture and the Go Schema never fails, so no kind is mapped: a case that
// records one fails until the test learns what it means.
var schemaKinds = vectors.Kinds{}

type schemaFixture struct {
	meta       schemaMeta
	validators []schemaValidator
}

// loadSchemaVectors reads schema.json's meta and builds every validator; one that does not decode
// or build fails the test with its name.
func loadSchemaVectors(tb testing.TB) schemaFixture {
	tb.Helper()
	var f schemaFixture
	var head struct {
		Meta schemaMeta `json:"meta"`
	}
	vectors.Load(tb, "schema.json", &head)
	f.meta = head.Meta
	for _, c := range vectors.Cases[schemaValidatorEntry](tb, "schema.json", "validators") {
		if c.Err != nil {
			tb.Fatal(c.Err)
		}
		s, err := validator.NewSchema(c.Data.Config)
		if err != nil {
			tb.Fatalf("validator %s: %v", c.Name, err)
		}
		f.validators = append(f.validators, schemaValidator{name: c.Name, entry: c.Data, schema: s})
	}
	return f
}

func (f schemaFixture) names() []string {
	names := make([]string, len(f.validators))
	for i, v := range f.validators {
		names[i] = v.name
	}
	return names
}

// withModel returns the validators holding a pydantic model of that name (a hivemind class name).
func (f schemaFixture) withModel(model string) []schemaValidator {
	var out []schemaValidator
	for _, v := range f.validators {
		for _, m := range v.entry.Config.Models {
			if m.Name == model {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// model returns a model of that name (a hivemind class name) as schema.json describes it.
func (f schemaFixture) model(name string) (validator.Model, bool) {
	for _, v := range f.validators {
		for _, m := range v.entry.Config.Models {
			if m.Name == name {
				return m, true
			}
		}
	}
	return validator.Model{}, false
}

// ownerKey returns the key of rsa_validator.json that signs schema.json's records: the one meta.owner_key
// names, resolved like any reference (a relabelled copy renames the keys, not meta) by the owner marker
// meta.owner_marker_text gives.
func (f schemaFixture) ownerKey(tb testing.TB, keys []rsaKey) rsaKey {
	tb.Helper()
	ref := f.meta.OwnerKey
	if _, quoted, ok := strings.Cut(ref, "'"); ok {
		if name, _, ok := strings.Cut(quoted, "'"); ok {
			ref = name
		}
	}
	i, err := vectors.Resolve(ref, keyNames(keys), func(i int) int {
		if string(keys[i].validator.OwnerMarker()) != f.meta.OwnerMarkerText {
			return 1
		}
		return 0
	})
	if err != nil {
		tb.Fatalf("schema.json meta.owner_key: %v", err)
	}
	if got := string(keys[i].validator.OwnerMarker()); got != f.meta.OwnerMarkerText {
		tb.Fatalf("schema.json meta.owner_key names key %s, whose marker is not meta.owner_marker_text", keys[i].name)
	}
	return keys[i]
}

// TestSchemaVectorValidators: the vectors' validator descriptions decode into SchemaConfig, their keys
// are the ones a Schema derives, and they survive a JSON round trip.
func TestSchemaVectorValidators(t *testing.T) {
	vectors.Run(t, "schema.json", "validators", func(t *testing.T, e schemaValidatorEntry) {
		cfg := e.Config
		require.Len(t, cfg.Models, len(e.Schemas))
		for i, m := range e.Schemas {
			if m.Prefix == nil {
				require.Empty(t, cfg.Models[i].Prefix)
			} else {
				require.Equal(t, *m.Prefix, cfg.Models[i].Prefix)
			}
			require.Len(t, cfg.Models[i].Fields, len(m.Fields))
			for j, field := range m.Fields {
				require.Equal(t, field.Name, cfg.Models[i].Fields[j].Name)
				require.Equal(t, field.RawKey, cfg.Models[i].RawKey(field.Name))
				requireBytes(t, field.KeyID, dht.MustKey(field.RawKey).ID().Bytes(), "key of field "+field.Name)
			}
		}
		data, err := json.Marshal(cfg)
		require.NoError(t, err)
		var back validator.SchemaConfig
		require.NoError(t, json.Unmarshal(data, &back))
		require.Equal(t, cfg, back)
		s, err := validator.NewSchema(cfg)
		require.NoError(t, err)
		require.Equal(t, cfg, s.Config())
	})
}

// TestReadyMadeSchemas: AlbertMetricsSchema and ProgressSchema describe exactly hivemind's albert
// MetricSchema and ProgressTracker's TrainingProgressSchema, as every validator of schema.json holding
// one of those models (found by its pydantic class name, with that validator's prefix) has them.
func TestReadyMadeSchemas(t *testing.T) {
	f := loadSchemaVectors(t)
	for _, tc := range []struct {
		model string
		build func(prefix string) validator.SchemaConfig
	}{
		{model: "MetricSchema", build: validator.AlbertMetricsSchema},
		{model: "TrainingProgressSchema", build: validator.ProgressSchema},
	} {
		t.Run(tc.model, func(t *testing.T) {
			holders := f.withModel(tc.model)
			require.NotEmpty(t, holders, "schema.json holds no validator with hivemind's %s", tc.model)
			for _, v := range holders {
				for _, m := range v.entry.Config.Models {
					if m.Name != tc.model {
						continue
					}
					want := tc.build(m.Prefix)
					require.Equal(t, want.Models, []validator.Model{m}, "validator %s", v.name)
					if len(v.entry.Config.Models) == 1 {
						require.Equal(t, want, v.entry.Config, "validator %s", v.name)
					}
				}
			}
		})
	}
}

// TestSchemaVectorCases replays schema.json "cases". A case's validator names an entry of
// "validators"; it is resolved once per value (resolveRefs): by name, or in a relabelled copy by the
// verdicts of the cases citing it.
func TestSchemaVectorCases(t *testing.T) {
	f := loadSchemaVectors(t)
	owner := f.ownerKey(t, loadRSAKeys(t))
	cases := vectors.Cases[schemaCase](t, "schema.json", "cases")
	resolved := resolveRefs(f.names(), cases,
		func(c schemaCase) string { return c.Validator },
		func(i int, c schemaCase) bool {
			want, _, err := c.outcome()
			got, _ := f.validators[i].schema.Validate(c.record())
			return err == nil && got == want
		})

	for _, cc := range cases {
		t.Run(cc.Name, func(t *testing.T) {
			if cc.Err != nil {
				t.Fatal(cc.Err)
			}
			tc := cc.Data
			res := resolved[tc.Validator]
			if res.err != nil {
				t.Fatalf("validator: %v", res.err)
			}
			s := f.validators[res.index].schema
			requireBytes(t, tc.KeyID, dht.MustKey(tc.RawKey).ID().Bytes(), "key of "+tc.RawKey)

			// Our encoder writes the same record bytes as hivemind for the typed inputs.
			subkey, err := tc.Subkey.Msgpack()
			require.NoError(t, err)
			requireBytes(t, tc.SubkeyHex, subkey, "subkey")
			value, err := tc.Value.Msgpack()
			require.NoError(t, err)
			requireBytes(t, tc.ValueHex, value, "value")

			want, composite, err := tc.outcome()
			require.NoError(t, err)
			rec := tc.record()
			got, reason := s.Validate(rec)
			require.Equal(t, want, got, "reason: %s", reason)
			if !got {
				require.NotEmpty(t, reason)
			}
			if tc.Error != nil {
				schemaKinds.Require(t, *tc.Error, errors.New(reason))
			}
			if composite == nil {
				return
			}
			// CompositeValidator([schema, RSASignatureValidator(owner)]).
			c := validator.NewComposite(s, owner.validator)
			signed := rec
			signed.Value = composite.SignedValue
			ok, reason := c.Validate(signed)
			require.Equal(t, composite.ValidateSigned, ok, "hivemind's signed value: %s", reason)
			ok, reason = c.Validate(rec)
			require.Equal(t, composite.ValidateUnsigned, ok, "unsigned: %s", reason)
			requireBytes(t, composite.StripValue, c.StripValue(signed), "composite strip_value")

			// Our own signature (PSS is randomized: verify, don't compare).
			ours := rec
			ours.Value = c.SignValue(rec)
			require.True(t, bytes.HasPrefix(ours.Value, append(bytes.Clone(rec.Value), "[signature:"...)))
			ok, reason = c.Validate(ours)
			require.Equal(t, composite.ValidateSigned, ok, "our signed value: %s", reason)
			requireBytes(t, rec.Value, c.StripValue(ours), "strip of our signed value")
		})
	}
}

// trainerMetricsRecord is one case of schema.json "trainer_metrics_records".
type trainerMetricsRecord struct {
	RawKey            string           `json:"raw_key"`
	ValueSource       vectors.Value    `json:"value_source"`
	NodeStoreResult   bool             `json:"node_store_result"`
	Record            vecRecord        `json:"record"`
	UnsignedValue     vectors.HexBytes `json:"unsigned_value_hex"`
	CompositeValidate bool             `json:"composite_validate"`
	StoreRequest      vectors.HexBytes `json:"store_request_hex"`
	StoreResponse     vectors.HexBytes `json:"store_response_hex"`
	GetLatest         struct {
		Expiration vectors.Float `json:"expiration"`
		Entries    []struct {
			Subkey     vectors.Value `json:"subkey"`
			Value      vectors.Value `json:"value"`
			Expiration vectors.Float `json:"expiration"`
		} `json:"entries"`
	} `json:"get_latest_from_other_node"`
}

// trainerProgressRecord is one case of schema.json "trainer_progress_records".
type trainerProgressRecord struct {
	RawKey            string           `json:"raw_key"`
	Record            vecRecord        `json:"record"`
	StrippedValue     vectors.HexBytes `json:"stripped_value_hex"`
	DecodedValue      vectors.Value    `json:"decoded_value"`
	CompositeValidate bool             `json:"composite_validate"`
}

// composites returns, for every validator of schema.json holding model with a field keyed rawKey,
// CompositeValidator([that schema, RSASignatureValidator(owner)]) as hivemind's trainers build it. A
// key no such validator has fails the test.
func (f schemaFixture) composites(t *testing.T, model, rawKey string, owner rsaKey) []*validator.Composite {
	t.Helper()
	var out []*validator.Composite
	for _, v := range f.validators {
		if _, ok := v.holds(model, rawKey); ok {
			out = append(out, validator.NewComposite(v.schema, owner.validator))
		}
	}
	if len(out) == 0 {
		t.Fatalf("no validator of schema.json has a %s with the key %q", model, rawKey)
	}
	return out
}

// TestSchemaVectorTrainerRecords replays the records real albert trainers and a real ProgressTracker
// stored, each checked by the validators holding its key's model with the owner's key.
func TestSchemaVectorTrainerRecords(t *testing.T) {
	f := loadSchemaVectors(t)
	owner := f.ownerKey(t, loadRSAKeys(t))
	t.Run("metrics", func(t *testing.T) {
		vectors.Run(t, "schema.json", "trainer_metrics_records", func(t *testing.T, tc trainerMetricsRecord) {
			rec := tc.Record.record()
			requireBytes(t, dht.MustKey(tc.RawKey).ID().Bytes(), rec.Key, "key of "+tc.RawKey)
			for _, c := range f.composites(t, "MetricSchema", tc.RawKey, owner) {
				ok, reason := c.Validate(rec)
				require.Equal(t, tc.CompositeValidate, ok, reason)
				requireBytes(t, tc.UnsignedValue, c.StripValue(rec), "strip_value")
			}
			source, err := tc.ValueSource.Msgpack()
			require.NoError(t, err)
			requireBytes(t, tc.UnsignedValue, source, "value_source")

			// What the second node received carries the record as signed; what it and the storing
			// node answered can only be a success for a record a Go node accepts too.
			var req dhtpb.StoreRequest
			require.NoError(t, proto.Unmarshal(tc.StoreRequest, &req))
			var resp dhtpb.StoreResponse
			require.NoError(t, proto.Unmarshal(tc.StoreResponse, &resp))
			require.Len(t, resp.StoreOk, len(req.Keys), "one answer per stored item")
			item := -1
			for i := range req.Keys {
				if bytes.Equal(req.Keys[i], rec.Key) && bytes.Equal(req.Subkeys[i], rec.Subkey) {
					item = i
				}
			}
			require.NotEqual(t, -1, item, "the StoreRequest does not carry the record")
			requireBytes(t, rec.Value, req.Values[item], "stored value")
			require.Equal(t, tc.Record.Expiration.Bits(), math.Float64bits(req.ExpirationTime[item]), "stored expiration")
			if resp.StoreOk[item] || tc.NodeStoreResult {
				require.True(t, tc.CompositeValidate, "hivemind stored a record its validators refused")
			}

			// The other node returns the entry stripped of its signature.
			found := false
			for _, e := range tc.GetLatest.Entries {
				subkey, err := e.Subkey.Msgpack()
				require.NoError(t, err)
				require.LessOrEqual(t, e.Expiration.Value(), tc.GetLatest.Expiration.Value(), "the dictionary expires with its latest entry")
				if !bytes.Equal(subkey, rec.Subkey) {
					continue
				}
				found = true
				value, err := e.Value.Msgpack()
				require.NoError(t, err)
				requireBytes(t, tc.UnsignedValue, value, "value read back")
				require.Equal(t, tc.Record.Expiration.Bits(), e.Expiration.Bits(), "expiration read back")
			}
			require.Equal(t, resp.StoreOk[item], found, "the other node returns the entry iff it stored it")
		})
	})
	t.Run("progress", func(t *testing.T) {
		vectors.Run(t, "schema.json", "trainer_progress_records", func(t *testing.T, tc trainerProgressRecord) {
			rec := tc.Record.record()
			requireBytes(t, dht.MustKey(tc.RawKey).ID().Bytes(), rec.Key, "key of "+tc.RawKey)
			want, err := tc.DecodedValue.Go()
			require.NoError(t, err)
			for _, c := range f.composites(t, "TrainingProgressSchema", tc.RawKey, owner) {
				ok, reason := c.Validate(rec)
				require.Equal(t, tc.CompositeValidate, ok, reason)
				stripped := c.StripValue(rec)
				requireBytes(t, tc.StrippedValue, stripped, "strip_value")
				decoded, err := msgpack.Unmarshal(stripped)
				require.NoError(t, err)
				require.True(t, msgpack.Equal(want, decoded), "decoded value %v, want %v", decoded, want)

				if ok && bytes.Contains(rec.Subkey, owner.validator.OwnerMarker()) {
					// A protected record that is moved fails: the schema sees the value only after
					// the signature checked.
					bad := rec
					bad.Expiration++
					ok, _ = c.Validate(bad)
					require.False(t, ok)
				}
			}
		})
	})
}
