package validator_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// rsaKeyEntry is one entry of rsa_validator.json "keys".
type rsaKeyEntry struct {
	PKCS1DER        vectors.HexBytes `json:"private_key_pkcs1_der_hex"`
	PKCS8DER        vectors.HexBytes `json:"private_key_pkcs8_der_hex"`
	PKCS1PEM        string           `json:"private_key_pkcs1_pem"`
	PKCS8PEM        string           `json:"private_key_pkcs8_pem"`
	PublicOpenSSH   string           `json:"public_key_openssh"`
	PublicPKIXDER   vectors.HexBytes `json:"public_key_pkix_der_hex"`
	OwnerMarker     vectors.HexBytes `json:"owner_marker_hex"`
	OwnerMarkerText string           `json:"owner_marker_text"`
}

// rsaKey is a key of the vectors, parsed, with a validator holding it.
type rsaKey struct {
	name      string // the entry's label
	entry     rsaKeyEntry
	priv      *rsa.PrivateKey
	validator *validator.RSASignature
}

// loadRSAKeys reads every key of rsa_validator.json; a key that does not decode or parse fails the
// test with its name.
func loadRSAKeys(tb testing.TB) []rsaKey {
	tb.Helper()
	var keys []rsaKey
	for _, c := range vectors.Cases[rsaKeyEntry](tb, "rsa_validator.json", "keys") {
		if c.Err != nil {
			tb.Fatal(c.Err)
		}
		priv, err := validator.ParseRSAPrivateKey(c.Data.PKCS1DER)
		if err != nil {
			tb.Fatalf("key %s: %v", c.Name, err)
		}
		v, err := validator.NewRSASignature(priv, slog.New(slog.DiscardHandler))
		if err != nil {
			tb.Fatalf("key %s: %v", c.Name, err)
		}
		keys = append(keys, rsaKey{name: c.Name, entry: c.Data, priv: priv, validator: v})
	}
	return keys
}

func keyNames(keys []rsaKey) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return names
}

// twoKeys returns two different keys of the vectors, for tests that need a signer and someone else
// with hivemind-made keys. Any two distinct keys serve: they are the first two the list holds.
func twoKeys(tb testing.TB) (a, b rsaKey) {
	tb.Helper()
	for _, k := range loadRSAKeys(tb) {
		switch {
		case a.priv == nil:
			a = k
		case !k.priv.PublicKey.Equal(&a.priv.PublicKey):
			return a, k
		}
	}
	tb.Fatal("rsa_validator.json holds fewer than two distinct keys")
	return
}

type vecRecord struct {
	Key        vectors.HexBytes `json:"key_hex"`
	Subkey     vectors.HexBytes `json:"subkey_hex"`
	Value      vectors.HexBytes `json:"value_hex"`
	Expiration vectors.Float    `json:"expiration"`
}

func (r vecRecord) record() dht.Record {
	return dht.Record{Key: r.Key, Subkey: r.Subkey, Value: r.Value, Expiration: r.Expiration.Value()}
}

// rsaRecordCase is one case of rsa_validator.json "records".
type rsaRecordCase struct {
	ValidatorKey       string           `json:"validator_key"`
	Record             vecRecord        `json:"record"`
	SigningPayload     vectors.HexBytes `json:"signing_payload_hex"`
	SignValue          vectors.HexBytes `json:"sign_value_hex"`
	SignValueUnchanged *bool            `json:"sign_value_unchanged"`
	ValidateRecord     vecRecord        `json:"validate_record"`
	ValidatePayload    vectors.HexBytes `json:"validate_payload_hex"`
	ValidateResult     *bool            `json:"validate_result"`
	Error              *vectors.Error   `json:"error"`
	StripValue         vectors.HexBytes `json:"strip_value_hex"`
	PortShould         string           `json:"port_should"`
	ExpectedFixed      *struct {
		ValidateResult *bool `json:"validate_result"`
	} `json:"expected_fixed"`
}

// rsaKinds maps the error kinds of rsa_validator.json to the errors RSASignature.Check wraps.
var rsaKinds = vectors.Kinds{
	"owner_key_not_rsa": validator.ErrOwnerKeyNotRSA,
	"owner_key_invalid": validator.ErrOwnerKeyInvalid,
}

// verdict is the validate outcome the port must produce for the case.
func (c rsaRecordCase) verdict() (bool, error) {
	fixed, err := vectors.Fixed(c.PortShould, c.ExpectedFixed)
	if err != nil {
		return false, err
	}
	if fixed != nil {
		// validate_raises_on_bad_owner_key: hivemind raises on an owner key that is not a parsable
		// RSA key; the port reports the record invalid instead, as expected_fixed records.
		if fixed.ValidateResult == nil {
			return false, errors.New("port_should is fix but expected_fixed has no validate_result")
		}
		return *fixed.ValidateResult, nil
	}
	switch {
	case c.Error != nil:
		// hivemind's validate raised. The port never raises: a record it cannot check is invalid,
		// with the reason (vectors README, "validate() may raise"); the kind is checked apart.
		return false, nil
	case c.ValidateResult == nil:
		return false, errors.New("neither validate_result nor error")
	}
	return *c.ValidateResult, nil
}

// maxSaltLen is the PSS salt length hivemind signs and verifies with: the maximum for SHA-256
// (vectors README, "Verify with the maximum salt length"). The test's own, independent of the
// package's.
func maxSaltLen(pub *rsa.PublicKey) int { return (pub.N.BitLen()+6)/8 - sha256.Size - 2 }

// signatureIn returns the signature that signing appended to value: signed must be value followed by
// "[signature:<standard padded base64>]".
func signatureIn(signed, value []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(signed, value)
	if !ok {
		return nil, errors.New("the signed value does not start with the value")
	}
	b64, ok := bytes.CutPrefix(rest, []byte("[signature:"))
	if !ok {
		return nil, fmt.Errorf("%q follows the value, want a [signature:...] marker", rest)
	}
	b64, ok = bytes.CutSuffix(b64, []byte("]"))
	if !ok {
		return nil, errors.New("the signature marker is not closed at the end")
	}
	return base64.StdEncoding.DecodeString(string(b64))
}

// verifies checks an RSA-PSS signature over payload as hivemind does (SHA-256, maximum salt length).
func verifies(pub *rsa.PublicKey, payload, sig []byte) error {
	digest := sha256.Sum256(payload)
	return rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: maxSaltLen(pub)})
}

// checkSignValue returns nil if a validator holding k reproduces the case's sign_value outcome: the
// value unchanged where hivemind left it unchanged; otherwise hivemind's signed value carries a
// signature that verifies with k's public key, and ours has the same form and verifies too (PSS
// signatures are randomized: verify them, never compare them). A case that did not sign passes.
func checkSignValue(k rsaKey, c rsaRecordCase) error {
	if c.SignValueUnchanged == nil {
		return nil
	}
	rec := c.Record.record()
	signed := k.validator.SignValue(rec)
	if *c.SignValueUnchanged {
		if !bytes.Equal(c.SignValue, rec.Value) {
			return errors.New("broken case: sign_value_unchanged, but sign_value_hex is not the value")
		}
		if !bytes.Equal(signed, rec.Value) {
			return fmt.Errorf("the value was signed (%x), hivemind left it unchanged", signed)
		}
		return nil
	}
	payload := validator.SigningPayload(rec.Key, rec.Subkey, rec.Value, rec.Expiration)
	theirs, err := signatureIn(c.SignValue, rec.Value)
	if err != nil {
		return fmt.Errorf("hivemind's signed value: %w", err)
	}
	if err := verifies(&k.priv.PublicKey, payload, theirs); err != nil {
		return fmt.Errorf("hivemind's signature does not verify with key %s: %w", k.name, err)
	}
	ours, err := signatureIn(signed, rec.Value)
	if err != nil {
		return fmt.Errorf("our signed value %q: %w", signed, err)
	}
	if len(signed) != len(c.SignValue) {
		return fmt.Errorf("our signed value has %d bytes, hivemind's %d", len(signed), len(c.SignValue))
	}
	if err := verifies(&k.priv.PublicKey, payload, ours); err != nil {
		return fmt.Errorf("our signature does not verify: %w", err)
	}
	return nil
}

func TestRSAKeys(t *testing.T) {
	vectors.Run(t, "rsa_validator.json", "keys", func(t *testing.T, k rsaKeyEntry) {
		forms := map[string][]byte{
			"pkcs1 der": k.PKCS1DER, "pkcs8 der": k.PKCS8DER,
			"pkcs1 pem": []byte(k.PKCS1PEM), "pkcs8 pem": []byte(k.PKCS8PEM),
		}
		var first *rsa.PrivateKey
		for form, data := range forms {
			key, err := validator.ParseRSAPrivateKey(data)
			require.NoError(t, err, form)
			if first == nil {
				first = key
			}
			require.True(t, first.Equal(key), form)
		}
		pkix, err := x509.MarshalPKIXPublicKey(&first.PublicKey)
		require.NoError(t, err)
		requireBytes(t, k.PublicPKIXDER, pkix, "public key, PKIX DER")
		requireBytes(t, k.PKCS1DER, x509.MarshalPKCS1PrivateKey(first), "hivemind's own key format")

		v := newRSA(t, first)
		requireBytes(t, k.OwnerMarker, v.OwnerMarker(), "owner marker")
		require.Equal(t, k.OwnerMarkerText, string(v.OwnerMarker()))
		require.Equal(t, "[owner:"+k.PublicOpenSSH+"]", string(validator.OwnerMarkerFor(&first.PublicKey)))
	})
}

// TestRSARecords replays rsa_validator.json "records". A record's validator_key names the key of
// the validator instance hivemind used; the key is resolved once per value (resolveRefs): by name,
// or in a relabelled copy by the sign_value outcomes of the records citing it (checkSignValue).
func TestRSARecords(t *testing.T) {
	keys := loadRSAKeys(t)
	cases := vectors.Cases[rsaRecordCase](t, "rsa_validator.json", "records")
	resolved := resolveRefs(keyNames(keys), cases,
		func(c rsaRecordCase) string { return c.ValidatorKey },
		func(i int, c rsaRecordCase) bool { return checkSignValue(keys[i], c) == nil })

	for _, cc := range cases {
		t.Run(cc.Name, func(t *testing.T) {
			if cc.Err != nil {
				t.Fatal(cc.Err)
			}
			tc := cc.Data
			res := resolved[tc.ValidatorKey]
			if res.err != nil {
				t.Fatalf("validator_key: %v", res.err)
			}
			k := keys[res.index]
			v := k.validator
			rec := tc.Record.record()
			requireBytes(t, tc.SigningPayload, validator.SigningPayload(rec.Key, rec.Subkey, rec.Value, rec.Expiration), "signing payload")
			if (tc.SignValueUnchanged == nil) != (tc.SignValue == nil) {
				t.Fatal("sign_value_hex and sign_value_unchanged come together")
			}
			require.NoError(t, checkSignValue(k, tc), "sign_value with key %s", k.name)

			vrec := tc.ValidateRecord.record()
			requireBytes(t, tc.ValidatePayload, validator.SigningPayload(vrec.Key, vrec.Subkey, v.StripValue(vrec), vrec.Expiration), "validate payload")
			requireBytes(t, tc.StripValue, v.StripValue(vrec), "strip_value")

			want, err := tc.verdict()
			require.NoError(t, err)
			got, reason := v.Validate(vrec)
			require.Equal(t, want, got, "reason: %s", reason)
			if !got {
				require.NotEmpty(t, reason)
			}
			if tc.Error != nil {
				// The port fails for the reason hivemind raised, without raising.
				rsaKinds.Require(t, *tc.Error, v.Check(vrec))
			}
			// The verdict does not depend on which key the validating instance holds, nor needs one.
			for _, other := range keys {
				gotOther, _ := other.validator.Validate(vrec)
				require.Equal(t, want, gotOther, "validated by key %s", other.name)
			}
			require.Equal(t, want, validator.CheckSignature(vrec) == nil, "checked without a key")
			require.Equal(t, want, !validator.IsProtected(vrec) || got, "an unprotected record is valid")
		})
	}
}
