package validator_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// FuzzValidate feeds arbitrary records to a composite of every schema of the vectors and the RSA
// validator of the key that signs them: validation, signing and stripping must never panic, and what
// SignValue appends StripValue removes. Seeds: every record of rsa_validator.json and schema.json.
func FuzzValidate(f *testing.F) {
	schemas := loadSchemaVectors(f)
	schema := mustSchema(f, validator.SchemaConfig{})
	for _, v := range schemas.validators {
		schema.MergeWith(v.schema)
	}
	c := validator.NewComposite(schema, schemas.ownerKey(f, loadRSAKeys(f)).validator)

	for _, r := range vectors.Cases[rsaRecordCase](f, "rsa_validator.json", "records") {
		for _, rec := range []vecRecord{r.Data.Record, r.Data.ValidateRecord} {
			f.Add([]byte(rec.Key), []byte(rec.Subkey), []byte(rec.Value), rec.Expiration.Value())
		}
	}
	for _, tc := range vectors.Cases[schemaCase](f, "schema.json", "cases") {
		f.Add([]byte(tc.Data.KeyID), []byte(tc.Data.SubkeyHex), []byte(tc.Data.ValueHex), tc.Data.Expiration.Value())
		if tc.Data.Composite != nil {
			f.Add([]byte(tc.Data.KeyID), []byte(tc.Data.SubkeyHex), []byte(tc.Data.Composite.SignedValue), tc.Data.Expiration.Value())
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
