package validator_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
)

func newRSA(t testing.TB, key *rsa.PrivateKey) *validator.RSASignature {
	t.Helper()
	v, err := validator.NewRSASignature(key, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	return v
}

func generateKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return key
}

// TestRSASignatureValidator ports hivemind's test_dht_crypto.py::test_rsa_signature_validator.
func TestRSASignatureValidator(t *testing.T) {
	a, b := twoKeys(t)
	receiver, sender := b.validator, a.validator
	mallory := newRSA(t, generateKey(t))

	plain := dht.Record{Key: []byte("key"), Subkey: []byte("subkey"), Value: []byte("value"), Expiration: 1e9}
	inKey, inSubkey := plain, plain
	inKey.Key = append([]byte("key"), sender.OwnerMarker()...)
	inSubkey.Subkey = append([]byte("subkey"), sender.OwnerMarker()...)
	protected := map[string]dht.Record{"marker in key": inKey, "marker in subkey": inSubkey}

	t.Run("unprotected record", func(t *testing.T) {
		require.Equal(t, plain.Value, sender.SignValue(plain))
		ok, _ := receiver.Validate(plain)
		require.True(t, ok)
	})
	for name, rec := range protected {
		t.Run(name, func(t *testing.T) {
			signed := rec
			signed.Value = sender.SignValue(rec)
			ok, reason := receiver.Validate(signed)
			require.True(t, ok, reason)
			require.Equal(t, []byte("value"), receiver.StripValue(signed))

			invalid := map[string][]byte{
				"without signature":        rec.Value,
				"invalid signature":        append(bytes.Clone(rec.Value), "[signature:INVALID_BYTES]"...),
				"someone else's signature": mallory.SignValue(rec), // not mallory's marker: unsigned
				"two signatures":           append(bytes.Clone(signed.Value), signed.Value[len(rec.Value):]...),
			}
			for what, value := range invalid {
				bad := rec
				bad.Value = value
				ok, reason := receiver.Validate(bad)
				require.False(t, ok, what)
				require.NotEmpty(t, reason, what)
			}
			// A signature made by mallory over the same fields, attached by hand.
			forged := rec
			forged.Key = append(bytes.Clone(rec.Key), mallory.OwnerMarker()...)
			sig := mallory.SignValue(forged)[len(rec.Value):]
			bad := rec
			bad.Value = append(bytes.Clone(rec.Value), sig...)
			ok, _ = receiver.Validate(bad)
			require.False(t, ok)
		})
	}
}

// TestRSAKeyIdentity stands for hivemind's test_cached_key, test_validator_instance_is_picklable and
// test_signing_in_different_process: Go keeps no process-wide key, so a validator's identity is its
// key, which survives serialization (hivemind's PKCS#1 DER) into another instance.
func TestRSAKeyIdentity(t *testing.T) {
	a, b := twoKeys(t)
	owner, other := a.validator, b.validator
	require.NotEqual(t, owner.OwnerMarker(), other.OwnerMarker(), "explicit keys differ")

	fresh := generateKey(t)
	first := newRSA(t, fresh)
	again, err := validator.ParseRSAPrivateKey(x509.MarshalPKCS1PrivateKey(fresh))
	require.NoError(t, err)
	second := newRSA(t, again)
	require.Equal(t, first.OwnerMarker(), second.OwnerMarker())

	rec := dht.Record{Key: dht.MustKey("k").ID().Bytes(), Subkey: append([]byte{0xc4, 0}, first.OwnerMarker()...),
		Value: []byte{0xc3}, Expiration: 1700000000}
	rec.Value = second.SignValue(rec)
	for _, v := range []*validator.RSASignature{first, second, owner} {
		ok, reason := v.Validate(rec)
		require.True(t, ok, reason)
	}
	marker := first.OwnerMarker()
	marker[0] = 'X'
	require.Equal(t, byte('['), first.OwnerMarker()[0], "OwnerMarker returns a copy")
}

// TestRSAOwnership emulates test_dhtnode_signatures at the validator level: only the owner of the
// marker in a subkey can write under it.
func TestRSAOwnership(t *testing.T) {
	a, b := twoKeys(t)
	bob, mallory := a.validator, b.validator
	key := dht.MustKey("test_key").ID().Bytes()
	subkey := append([]byte("protected_subkey"), bob.OwnerMarker()...)
	rec := dht.Record{Key: key, Subkey: subkey, Value: []byte{0xa3, 'b', 'o', 'b'}, Expiration: 1700000000}

	byBob := rec
	byBob.Value = bob.SignValue(rec)
	for _, v := range []*validator.RSASignature{bob, mallory} {
		ok, _ := v.Validate(byBob)
		require.True(t, ok)
	}
	byMallory := rec
	byMallory.Value = mallory.SignValue(rec)
	require.Equal(t, rec.Value, byMallory.Value, "mallory does not sign records that carry bob's marker")
	ok, _ := bob.Validate(byMallory)
	require.False(t, ok)
}

func TestRSAMergeWith(t *testing.T) {
	a, b := twoKeys(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	first, err := validator.NewRSASignature(a.priv, logger)
	require.NoError(t, err)
	require.True(t, first.MergeWith(a.validator))
	require.Empty(t, logs.String(), "same key: nothing to warn about")

	// Q8: hivemind silently keeps the first validator; the port keeps the merge but warns.
	require.True(t, first.MergeWith(b.validator))
	require.Contains(t, logs.String(), "level=WARN")
	require.Contains(t, logs.String(), "ignored")

	s, err := validator.NewSchema(validator.SchemaConfig{})
	require.NoError(t, err)
	require.False(t, first.MergeWith(s))
	require.Equal(t, validator.RSAPriority, first.Priority())
}

func TestRSAConstructorErrors(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 512)
	if err == nil {
		_, err = validator.NewRSASignature(small, nil)
		require.ErrorIs(t, err, validator.ErrInvalidKey)
	}
	_, err = validator.NewRSASignature(nil, nil)
	require.ErrorIs(t, err, validator.ErrInvalidKey)

	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	require.NoError(t, err)
	cases := map[string][]byte{
		"ecdsa pkcs8":     der,
		"ecdsa pem":       pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"other pem block": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"garbage":         []byte("not a key"),
		"empty":           nil,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := validator.ParseRSAPrivateKey(data)
			require.ErrorIs(t, err, validator.ErrInvalidKey)
		})
	}
}

// TestRSACheck: Check says why a record is invalid, Validate's reason is its text, and an owner key
// at fault is told apart by its sentinel (the records hivemind's validate raises on).
func TestRSACheck(t *testing.T) {
	signer, _ := twoKeys(t)
	v := signer.validator
	good := dht.Record{Key: []byte("key"), Subkey: v.OwnerMarker(), Value: []byte("value"), Expiration: 1e9}
	good.Value = v.SignValue(good)
	ed25519 := []byte("[owner:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]")
	withSubkey := func(subkey []byte) dht.Record {
		r := good
		r.Subkey = subkey
		return r
	}
	tests := []struct {
		name  string
		rec   dht.Record
		valid bool
		kind  error // wrapped by the error, when set
	}{
		{name: "signed", rec: good, valid: true},
		{name: "unprotected", rec: withSubkey([]byte("no marker")), valid: true},
		{name: "missing signature", rec: dht.Record{Key: good.Key, Subkey: good.Subkey, Value: []byte("value"), Expiration: 1e9}},
		{name: "ed25519 owner key", rec: withSubkey(ed25519), kind: validator.ErrOwnerKeyNotRSA},
		{name: "truncated owner key", rec: withSubkey([]byte("[owner:ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC]")), kind: validator.ErrOwnerKeyInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Check(tc.rec)
			ok, reason := v.Validate(tc.rec)
			require.Equal(t, tc.valid, ok)
			if tc.valid {
				require.NoError(t, err)
				require.Empty(t, reason)
				return
			}
			require.Error(t, err)
			require.Equal(t, err.Error(), reason)
			for _, sentinel := range []error{validator.ErrOwnerKeyNotRSA, validator.ErrOwnerKeyInvalid} {
				require.Equal(t, sentinel == tc.kind, errors.Is(err, sentinel), "%v", sentinel)
			}
		})
	}
}
