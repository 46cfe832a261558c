package validator_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// regular builds a regular record for a string key.
func regular(t testing.TB, key string, value any) dht.Record {
	t.Helper()
	return dht.Record{Key: dht.MustKey(key).ID().Bytes(), Subkey: []byte(dht.TagRegular), Value: mustMarshal(t, value)}
}

// entry builds a dictionary-entry record for a string key.
func entry(t testing.TB, key string, subkey, value any) dht.Record {
	t.Helper()
	r := regular(t, key, value)
	r.Subkey = mustMarshal(t, subkey)
	return r
}

func valid(t testing.TB, v dht.RecordValidator, r dht.Record) bool {
	t.Helper()
	ok, reason := v.Validate(r)
	if !ok {
		require.NotEmpty(t, reason)
	}
	return ok
}

// TestSchemaHivemindTests ports hivemind's test_dht_schema.py at the validator level.
func TestSchemaHivemindTests(t *testing.T) {
	// SchemaValidator(SampleSchema) as hivemind's tests build it (allow_extra_keys defaults to
	// True), with the model as schema.json describes it (found by its class name).
	sample := func(t *testing.T) *validator.Schema {
		m, ok := loadSchemaVectors(t).model("SampleSchema")
		require.True(t, ok, "schema.json holds no validator with hivemind's SampleSchema")
		return mustSchema(t, validator.SchemaConfig{AllowExtraKeys: true, Models: []validator.Model{m}})
	}
	t.Run("expecting_public_keys", func(t *testing.T) {
		s := sample(t)
		require.True(t, valid(t, s, entry(t, "signed_data", []byte("uid[owner:public-key]"), []byte("foo_bar"))))
		require.False(t, valid(t, s, entry(t, "signed_data", []byte("uid-without-public-key"), []byte("foo_bar"))))
	})
	t.Run("prefix", func(t *testing.T) {
		s := mustSchema(t, validator.SchemaConfig{AllowExtraKeys: false, Models: []validator.Model{{
			Name: "Schema", Prefix: "prefix",
			Fields: []validator.Field{{Name: "field", Type: validator.Type{Kind: validator.KindInt, Strict: true}}},
		}}})
		require.True(t, valid(t, s, regular(t, "prefix_field", 777)))
		require.False(t, valid(t, s, regular(t, "prefix_field", "string_value")))
		require.False(t, valid(t, s, regular(t, "field", 777)), "the bare field name is not a key")
	})
	t.Run("merging_schema_validators", func(t *testing.T) {
		s := sample(t)
		require.False(t, s.MergeWith(validator.NewComposite()), "cannot merge with another kind")
		// SecondSchema: some_field: StrictInt, another_field: str; ThirdSchema: another_field: StrictInt.
		second := mustSchema(t, validator.SchemaConfig{Models: []validator.Model{{Name: "SecondSchema", Fields: []validator.Field{
			{Name: "some_field", Type: validator.Type{Kind: validator.KindInt, Strict: true}},
			{Name: "another_field", Type: validator.Type{Kind: validator.KindStr}},
		}}}})
		third := mustSchema(t, oneField("another_field", validator.Type{Kind: validator.KindInt, Strict: true}, false))
		require.True(t, s.MergeWith(second))
		require.True(t, s.MergeWith(third))
		require.Len(t, s.Config().Models, 3)
		require.Len(t, second.Config().Models, 1, "the merged-in validator is unchanged")

		require.True(t, valid(t, s, regular(t, "experiment_name", []byte("foo_bar"))))
		require.True(t, valid(t, s, regular(t, "some_field", 777)))
		require.False(t, valid(t, s, regular(t, "some_field", "string_value")))
		require.True(t, valid(t, s, regular(t, "another_field", 42)))
		require.True(t, valid(t, s, regular(t, "another_field", "string_value")))
		require.False(t, valid(t, s, regular(t, "another_field", 4.5)))
		// Unknown keys are allowed because the first schema allows them.
		require.True(t, valid(t, s, regular(t, "unknown_key", "foo_bar")))
	})
	t.Run("keys_outside_schema", func(t *testing.T) {
		strict := mustSchema(t, oneField("some_field", validator.Type{Kind: validator.KindInt, Strict: true}, false))
		require.False(t, valid(t, strict, regular(t, "unknown_key", 1)))
		require.True(t, strict.MergeWith(mustSchema(t, oneField("other", validator.Type{Kind: validator.KindInt}, true))))
		require.True(t, valid(t, strict, regular(t, "unknown_key", 1)), "allow_extra_keys is the OR of both")
	})
}

func TestSchemaSemantics(t *testing.T) {
	key := validator.BytesWithPublicKey()
	model := validator.Type{Kind: validator.KindModel, Model: "Inner", Fields: []validator.Field{
		{Name: "a", Required: true, Type: validator.Type{Kind: validator.KindInt, Strict: true}},
	}}
	cfg := validator.SchemaConfig{Models: []validator.Model{{Name: "M", Fields: []validator.Field{
		{Name: "blob", Type: validator.Type{Kind: validator.KindBytes}},
		{Name: "owned", Type: key},
		{Name: "pattern", Type: validator.Type{Kind: validator.KindBytes, Regex: `\xff+é`}},
		{Name: "text", Type: validator.Type{Kind: validator.KindStr, Regex: `\d+x`}},
		{Name: "inner", Type: model},
		{Name: "by_bytes", Type: validator.Type{Kind: validator.KindMap, Key: &validator.Type{Kind: validator.KindBytes},
			Value: &validator.Type{Kind: validator.KindInt, Strict: true}}},
		{Name: "by_int", Type: validator.Type{Kind: validator.KindMap, Key: &validator.Type{Kind: validator.KindInt},
			Value: &validator.Type{Kind: validator.KindFloat, Strict: true}}},
		{Name: "rate", Type: validator.Type{Kind: validator.KindFloat, Strict: true, Ge: validator.Float(0)}},
		{Name: "loss", Type: validator.Type{Kind: validator.KindFloat, Strict: true}},
	}}}}
	s := mustSchema(t, cfg)
	cases := []struct {
		name string
		rec  dht.Record
		want bool
	}{
		{name: "bytes", rec: regular(t, "blob", []byte("x")), want: true},
		{name: "str for bytes", rec: regular(t, "blob", "x"), want: false},
		{name: "unknown ext is Python bytes", rec: regular(t, "blob", msgpack.Ext{Code: 7, Data: []byte("x")}), want: true},
		{name: "dictionary ext is not bytes", rec: regular(t, "blob", msgpack.Ext{Code: 0x50, Data: []byte("x")}), want: false},
		{name: "undecodable value", rec: dht.Record{Key: dht.MustKey("blob").ID().Bytes(), Subkey: []byte{0xc0}, Value: []byte{0xc4}}, want: false},
		{name: "signed value is not msgpack", rec: regular(t, "blob", msgpack.Raw("\xc4\x01x[signature:abc]")), want: false},
		{name: "owner marker", rec: regular(t, "owned", []byte("x[owner:k]y")), want: true},
		{name: "owner marker needs a key", rec: regular(t, "owned", []byte("[owner:]")), want: false},
		{name: "owner marker on the first line only", rec: regular(t, "owned", []byte("\n[owner:k]")), want: false},
		{name: "byte regex", rec: regular(t, "pattern", []byte("\xff\xff\xc3\xa9...")), want: true},
		{name: "byte regex anchored at start", rec: regular(t, "pattern", []byte("a\xff\xc3\xa9")), want: false},
		{name: "str regex is re.match", rec: regular(t, "text", "12x..."), want: true},
		{name: "str regex mismatch", rec: regular(t, "text", "x12x"), want: false},
		{name: "model", rec: regular(t, "inner", msgpack.MapOf("a", 1)), want: false /* a map as a regular value */},
		{name: "model under a field-name subkey", rec: entry(t, "inner", "a", 1), want: true /* {"a": 1} parses as Inner */},
		{name: "model under another subkey", rec: entry(t, "inner", "b", 1), want: false},
		{name: "model under a bytes subkey", rec: entry(t, "inner", []byte("a"), 1), want: false},
		{name: "map entry", rec: entry(t, "by_bytes", []byte("k"), 1), want: true},
		{name: "map entry with str subkey", rec: entry(t, "by_bytes", "k", 1), want: false},
		{name: "map entry with tuple subkey", rec: entry(t, "by_bytes", msgpack.Tuple{1}, 1), want: false},
		{name: "map entry with list subkey (unhashable)", rec: entry(t, "by_bytes", []any{1}, 1), want: false},
		{name: "map entry with map subkey (unhashable)", rec: entry(t, "by_bytes", msgpack.MapOf("a", 1), 1), want: false},
		{name: "lax int key takes True (1 == True)", rec: entry(t, "by_int", true, 1.5), want: true},
		{name: "lax int key takes 2.0", rec: entry(t, "by_int", 2.0, 1.5), want: true},
		{name: "lax int key refuses 2.5", rec: entry(t, "by_int", 2.5, 1.5), want: false},
		{name: "NaN inside a dictionary", rec: entry(t, "by_int", 1, math.NaN()), want: true},
		{name: "NaN as a regular value", rec: regular(t, "loss", math.NaN()), want: false},
		{name: "negative zero satisfies ge 0.0", rec: regular(t, "rate", math.Copysign(0, -1)), want: true},
		{name: "negative rate", rec: regular(t, "rate", -0.5), want: false},
		{name: "infinite rate", rec: regular(t, "rate", math.Inf(1)), want: true},
		{name: "regular record for a dictionary field", rec: regular(t, "by_bytes", 1), want: false},
		{name: "whole-dictionary tag is a regular record", rec: dht.Record{Key: dht.MustKey("loss").ID().Bytes(), Value: mustMarshal(t, 1.5)}, want: true},
		{name: "unknown key allowed", rec: regular(t, "nope", 1), want: false /* AllowExtraKeys is false */},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, valid(t, s, tc.rec))
		})
	}
	require.Equal(t, validator.SchemaPriority, s.Priority())
	rec := regular(t, "blob", []byte("x"))
	require.Equal(t, rec.Value, s.SignValue(rec))
	require.Equal(t, rec.Value, s.StripValue(rec))
}

func TestAlbertMetricsValues(t *testing.T) {
	key, _ := twoKeys(t)
	owner := key.validator
	c := validator.NewComposite(mustSchema(t, validator.AlbertMetricsSchema("my_run")), owner)
	metrics := func(step any) *msgpack.Map {
		return msgpack.MapOf("step", step, "samples_per_second", 12.5, "samples_accumulated", 256,
			"loss", 3.125, "mini_steps", 8)
	}
	sign := func(v any, subkey []byte) dht.Record {
		r := entry(t, "my_run_metrics", subkey, v)
		r.Expiration = 1700000600
		r.Value = c.SignValue(r)
		return r
	}
	require.True(t, valid(t, c, sign(metrics(7), owner.OwnerMarker())))
	require.False(t, valid(t, c, sign(metrics(7.0), owner.OwnerMarker())), "a float step")
	require.False(t, valid(t, c, sign(metrics(-1), owner.OwnerMarker())))
	require.False(t, valid(t, c, sign(metrics(7), []byte("no marker"))), "the subkey must carry an owner marker")
	// The run id is the key prefix.
	require.True(t, valid(t, c, entry(t, "albert_metrics", []byte("anything"), "anything")), "not this run's key")
}

func TestSchemaConfigErrors(t *testing.T) {
	intT := validator.Type{Kind: validator.KindInt}
	deep := intT
	for range 40 {
		inner := deep
		deep = validator.Type{Kind: validator.KindOptional, Of: &inner}
	}
	cases := map[string]validator.Type{
		"unknown kind":          {Kind: "list"},
		"empty kind":            {},
		"bounds on str":         {Kind: validator.KindStr, Ge: validator.Int(0)},
		"bounds on bool":        {Kind: validator.KindBool, Lt: validator.Int(1)},
		"gt with ge":            {Kind: validator.KindInt, Gt: validator.Int(0), Ge: validator.Int(1)},
		"lt with le":            {Kind: validator.KindFloat, Lt: validator.Int(0), Le: validator.Int(1)},
		"multiple_of 0":         {Kind: validator.KindInt, MultipleOf: validator.Int(0)},
		"multiple_of 0.0":       {Kind: validator.KindFloat, MultipleOf: validator.Float(0)},
		"regex on int":          {Kind: validator.KindInt, Regex: "1"},
		"other regex semantics": {Kind: validator.KindStr, Regex: "a", RegexMatch: "fullmatch"},
		"bad regex":             {Kind: validator.KindStr, Regex: "("},
		"python-only regex":     {Kind: validator.KindStr, Regex: `(?<=a)b`},
		"owner marker on str":   {Kind: validator.KindStr, OwnerMarkerRequired: true},
		"map without value":     {Kind: validator.KindMap, Key: &intT},
		"optional without type": {Kind: validator.KindOptional},
		"element type on int":   {Kind: validator.KindInt, Of: &intT},
		"fields on a map":       {Kind: validator.KindMap, Key: &intT, Value: &intT, Fields: []validator.Field{{Name: "a", Type: intT}}},
		"bad extra":             {Kind: validator.KindModel, Extra: "sometimes"},
		"duplicate field":       {Kind: validator.KindModel, Fields: []validator.Field{{Name: "a", Type: intT}, {Name: "a", Type: intT}}},
		"unnamed field":         {Kind: validator.KindModel, Fields: []validator.Field{{Type: intT}}},
		"too deep":              deep,
	}
	for name, typ := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := validator.NewSchema(oneField("f", typ, true))
			require.ErrorIs(t, err, validator.ErrInvalidSchema)
		})
	}
	_, err := validator.NewSchema(validator.SchemaConfig{Models: []validator.Model{{Prefix: "\xff", Fields: []validator.Field{{Name: "f", Type: intT}}}}})
	require.ErrorIs(t, err, validator.ErrInvalidSchema, "a key that is not valid UTF-8")
	_, err = validator.NewSchema(validator.SchemaConfig{Models: []validator.Model{{Extra: "x"}}})
	require.ErrorIs(t, err, validator.ErrInvalidSchema)
}

func TestSchemaConfigIsCopied(t *testing.T) {
	cfg := validator.AlbertMetricsSchema("albert")
	s := mustSchema(t, cfg)
	cfg.Models[0].Fields[0].Type.Value.Fields[0].Type.Ge.Int = 100
	cfg.Models[0].Prefix = "changed"
	require.Equal(t, validator.AlbertMetricsSchema("albert"), s.Config())
	got := s.Config()
	got.Models[0].Fields[0].Type.Key.Regex = "changed"
	require.Equal(t, validator.AlbertMetricsSchema("albert"), s.Config())
}

func TestNumberJSON(t *testing.T) {
	cases := []struct {
		name string
		n    validator.Number
		json string
	}{
		{name: "int", n: *validator.Int(-5), json: `{"t":"int","v":"-5"}`},
		{name: "float", n: *validator.Float(0.5), json: `{"t":"float","repr":"0.5","bits":"3fe0000000000000"}`},
		{name: "integral float", n: *validator.Float(2), json: `{"t":"float","repr":"2.0","bits":"4000000000000000"}`},
		{name: "negative zero", n: *validator.Float(math.Copysign(0, -1)), json: `{"t":"float","repr":"-0.0","bits":"8000000000000000"}`},
		{name: "inf", n: *validator.Float(math.Inf(-1)), json: `{"t":"float","repr":"-inf","bits":"fff0000000000000"}`},
		{name: "big float", n: *validator.Float(1e300), json: `{"t":"float","repr":"1e+300","bits":"7e37e43c8800759c"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.n)
			require.NoError(t, err)
			require.JSONEq(t, tc.json, string(data))
			var back validator.Number
			require.NoError(t, json.Unmarshal(data, &back))
			require.Equal(t, math.Float64bits(tc.n.Float), math.Float64bits(back.Float))
			require.Equal(t, tc.n.IsFloat, back.IsFloat)
			require.Equal(t, tc.n.Int, back.Int)
		})
	}
	nan := *validator.Float(math.NaN())
	require.Equal(t, "nan", nan.String())
	for _, bad := range []string{`{"t":"int","v":"1.5"}`, `{"t":"int","v":"99999999999999999999"}`,
		`{"t":"float","bits":"00"}`, `{"t":"str","v":"1"}`, `[]`} {
		var n validator.Number
		require.ErrorIs(t, json.Unmarshal([]byte(bad), &n), validator.ErrInvalidSchema, bad)
	}
	// A whole config survives JSON, as it must to reach a worker process.
	cfg := validator.ProgressSchema("run")
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(data), `"ge":{"t":"int","v":"0"}`), string(data))
	var back validator.SchemaConfig
	require.NoError(t, json.Unmarshal(data, &back))
	require.Equal(t, cfg, back)
}
