package validator_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// FuzzValidate feeds arbitrary records to a composite of every schema of the vectors and the RSA
// validator: validation, signing and stripping must never panic, and what SignValue appends
// StripValue removes. Seeds: every record of rsa_validator.json and schema.json.
func FuzzValidate(f *testing.F) {
	rsaF := loadRSA(f)
	schemaF := loadSchemaVectors(f)
	owner := rsaF.validators["owner"]
	schema := mustSchema(f, validator.AlbertMetricsSchema("albert"))
	for _, cfg := range schemaF.configs {
		schema.MergeWith(mustSchema(f, cfg))
	}
	c := validator.NewComposite(schema, owner)

	for _, r := range rsaF.vectors.Records {
		for _, rec := range []vecRecord{r.Record, r.ValidateRecord} {
			f.Add([]byte(rec.Key), []byte(rec.Subkey), []byte(rec.Value), rec.Expiration.Value())
		}
	}
	for _, tc := range schemaF.vectors.Cases {
		f.Add([]byte(tc.KeyID), []byte(tc.SubkeyHex), []byte(tc.ValueHex), tc.Expiration.Value())
		if tc.Composite != nil {
			f.Add([]byte(tc.KeyID), []byte(tc.SubkeyHex), []byte(tc.Composite.SignedValue), tc.Expiration.Value())
		}
	}
	f.Add([]byte("[owner:ssh-rsa AAAA]"), []byte{0xc0}, []byte("[signature:]]"), math.NaN())

	f.Fuzz(func(t *testing.T, key, subkey, value []byte, expiration float64) {
		rec := dht.Record{Key: key, Subkey: subkey, Value: value, Expiration: expiration}
		before := bytes.Clone(value)
		ok, reason := c.Validate(rec)
		if !ok && reason == "" {
			t.Fatal("a rejection without a reason")
		}
		_ = c.StripValue(rec)
		signed := c.SignValue(rec)
		if !bytes.Equal(value, before) {
			t.Fatal("the record's value was modified")
		}
		if !bytes.Contains(value, []byte("[signature:")) {
			rec.Value = signed
			if got := c.StripValue(rec); !bytes.Equal(got, value) {
				t.Fatalf("strip(sign(v)) = %q, want %q", got, value)
			}
		}
	})
}
