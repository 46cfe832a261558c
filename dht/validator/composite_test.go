package validator_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
)

func mustSchema(t testing.TB, cfg validator.SchemaConfig) *validator.Schema {
	t.Helper()
	s, err := validator.NewSchema(cfg)
	require.NoError(t, err)
	return s
}

func oneField(name string, typ validator.Type, allowExtra bool) validator.SchemaConfig {
	return validator.SchemaConfig{AllowExtraKeys: allowExtra, Models: []validator.Model{{
		Name: "Schema_" + name, Fields: []validator.Field{{Name: name, Type: typ}},
	}}}
}

func kinds(vs []dht.RecordValidator) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%T", v)
	}
	return out
}

// TestCompositeValidator ports hivemind's test_dht_validation.py::test_composite_validator: two
// applications each bring [RSA, Schema]; the composite keeps one of each, schema first.
func TestCompositeValidator(t *testing.T) {
	signer, _ := twoKeys(t)
	rsaA := newRSA(t, signer.priv)
	rsaB := newRSA(t, signer.priv)
	// SchemaA: field_a: conbytes(strict=True); SchemaB: field_b: Dict[BytesWithPublicKey, StrictInt].
	schemaA := mustSchema(t, oneField("field_a", validator.Type{Kind: validator.KindBytes, Strict: true}, false))
	key := validator.BytesWithPublicKey()
	schemaB := mustSchema(t, oneField("field_b", validator.Type{Kind: validator.KindMap, Key: &key,
		Value: &validator.Type{Kind: validator.KindInt, Strict: true}}, false))

	c := validator.NewComposite(rsaA, schemaA)
	want := []string{"*validator.Schema", "*validator.RSASignature"}
	require.Equal(t, want, kinds(c.Validators()))
	c.Extend(schemaB, rsaB)
	require.Equal(t, want, kinds(c.Validators()))
	require.Len(t, c.Validators()[0].(*validator.Schema).Config().Models, 2)

	rec := dht.Record{
		Key:        dht.MustKey("field_b").ID().Bytes(),
		Subkey:     mustMarshal(t, rsaA.OwnerMarker()),
		Value:      mustMarshal(t, 777),
		Expiration: 1700000010,
	}
	signed := rec
	signed.Value = c.SignValue(rec)
	require.Equal(t, 1, bytes.Count(signed.Value, []byte("[signature:")), "the RSA validators were merged")
	ok, reason := c.Validate(signed)
	require.True(t, ok, reason)
	require.Equal(t, rec.Value, c.StripValue(signed))

	unknown := dht.Record{Key: dht.MustKey("unknown_key").ID().Bytes(), Subkey: []byte(dht.TagRegular),
		Value: mustMarshal(t, 777), Expiration: 1700000010}
	signed = unknown
	signed.Value = c.SignValue(unknown)
	require.Zero(t, bytes.Count(signed.Value, []byte("[signature:")))
	ok, _ = c.Validate(signed)
	require.False(t, ok, "unknown_key is in no schema and both forbid extra keys")
}

// recorder is a validator that logs what it sees and tags what it signs.
type recorder struct {
	name     string
	priority int
	log      *[]string
	mu       *sync.Mutex
	reject   bool
}

func (r recorder) note(what string, rec dht.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, fmt.Sprintf("%s.%s(%s)", r.name, what, rec.Value))
}

func (r recorder) Validate(rec dht.Record) (bool, string) {
	r.note("validate", rec)
	return !r.reject, "rejected by " + r.name
}

func (r recorder) SignValue(rec dht.Record) []byte {
	r.note("sign", rec)
	return append(bytes.Clone(rec.Value), "+"+r.name...)
}

func (r recorder) StripValue(rec dht.Record) []byte {
	r.note("strip", rec)
	return bytes.TrimSuffix(rec.Value, []byte("+"+r.name))
}

func (r recorder) Priority() int                      { return r.priority }
func (r recorder) MergeWith(dht.RecordValidator) bool { return false }

func TestCompositeOrder(t *testing.T) {
	var log []string
	var mu sync.Mutex
	mk := func(name string, prio int) recorder {
		return recorder{name: name, priority: prio, log: &log, mu: &mu}
	}
	// Added out of order; b and c share a priority and keep their insertion order.
	c := validator.NewComposite(mk("hi", 10), mk("b", 0), mk("c", 0), nil)
	c.Extend(mk("lo", -5), c)
	require.Len(t, c.Validators(), 4)

	rec := dht.Record{Value: []byte("v")}
	signed := c.SignValue(rec)
	require.Equal(t, "v+lo+b+c+hi", string(signed))
	require.Equal(t, []string{"lo.sign(v)", "b.sign(v+lo)", "c.sign(v+lo+b)", "hi.sign(v+lo+b+c)"}, log)

	log = nil
	rec.Value = signed
	ok, _ := c.Validate(rec)
	require.True(t, ok)
	require.Equal(t, []string{
		"hi.validate(v+lo+b+c+hi)", "hi.strip(v+lo+b+c+hi)",
		"c.validate(v+lo+b+c)", "c.strip(v+lo+b+c)",
		"b.validate(v+lo+b)", "b.strip(v+lo+b)",
		"lo.validate(v+lo)", // the last validator's value is not stripped
	}, log)

	log = nil
	require.Equal(t, "v", string(c.StripValue(rec)))
	require.Equal(t, []string{"hi.strip(v+lo+b+c+hi)", "c.strip(v+lo+b+c)", "b.strip(v+lo+b)", "lo.strip(v+lo)"}, log)

	log = nil
	rejecting := validator.NewComposite(mk("lo", 0), recorder{name: "hi", priority: 1, log: &log, mu: &mu, reject: true})
	ok, reason := rejecting.Validate(rec)
	require.False(t, ok)
	require.Contains(t, reason, "rejected by hi")
	require.Equal(t, []string{"hi.validate(v+lo+b+c+hi)"}, log, "validation stops at the first rejection")
}

func TestCompositeEmpty(t *testing.T) {
	c := validator.NewComposite()
	rec := dht.Record{Key: []byte("k"), Value: []byte("[signature:x]")}
	ok, _ := c.Validate(rec)
	require.True(t, ok)
	require.Equal(t, rec.Value, c.SignValue(rec))
	require.Equal(t, rec.Value, c.StripValue(rec))
	require.Equal(t, 0, c.Priority())
	require.False(t, c.MergeWith(validator.NewComposite()))
}

// TestConcurrentUse runs validation while validators are merged in (run with -race).
func TestConcurrentUse(t *testing.T) {
	key, _ := twoKeys(t)
	owner := key.validator
	metrics := mustSchema(t, validator.AlbertMetricsSchema("albert"))
	c := validator.NewComposite(metrics, owner)
	rec := dht.Record{
		Key:    dht.MustKey("albert_metrics").ID().Bytes(),
		Subkey: mustMarshal(t, owner.OwnerMarker()),
		Value: mustMarshal(t, msgpack.MapOf("step", 1, "samples_per_second", 2.0, "samples_accumulated", 3,
			"loss", 4.0, "mini_steps", 5)),
		Expiration: 1700000000,
	}
	rec.Value = c.SignValue(rec)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				ok, reason := c.Validate(rec)
				if !ok {
					t.Errorf("worker %d: %s", i, reason)
					return
				}
			}
		})
	}
	for i := range 10 {
		c.Extend(mustSchema(t, oneField(fmt.Sprintf("f%d", i), validator.Type{Kind: validator.KindInt}, false)), owner)
		metrics.MergeWith(mustSchema(t, validator.ProgressSchema("albert")))
	}
	wg.Wait()
	require.Equal(t, []string{"*validator.Schema", "*validator.RSASignature"}, kinds(c.Validators()))
}
