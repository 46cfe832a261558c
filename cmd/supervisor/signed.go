package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"fmt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// Verdicts printed in a record's "signed" field.
const (
	signedValid   = "valid"
	signedInvalid = "invalid"
)

// ownerTag starts every owner marker "[owner:…]": a record whose key and subkey lack it is not
// protected by hivemind's RSASignatureValidator, and needs no check.
const ownerTag = "[owner:"

// verifierKeyBits is the size of the verifier's throwaway key (the smallest RSASignature takes:
// it is never used to sign).
const verifierKeyBits = 1024

// signedRecord is a record as get prints it: its value without signatures and, for a protected
// record, the verdict on its signature.
type signedRecord struct {
	// Value is the value to decode: without its "[signature:…]" markers when the record is
	// protected, as stored otherwise.
	Value []byte
	// Verdict is signedValid or signedInvalid for a protected record, "" for an unprotected one.
	Verdict string
	// Reason says why a protected record is invalid.
	Reason string
}

// signatureChecker checks the records a get returns as a hivemind peer with an
// RSASignatureValidator would (dht/validator.RSASignature): a record whose key or subkey holds an
// owner marker "[owner:ssh-rsa …]" is protected, and valid only with exactly one signature by that
// key. It is used by one goroutine.
type signatureChecker struct {
	verifier *validator.RSASignature // made for the first record that may be protected
}

// check returns what get prints of r. Records without an owner marker come back untouched, with no
// verdict (a validator passes them, and a value that happens to contain "[signature:" is left
// whole); protected ones come back stripped of their signatures, with the validator's verdict.
func (c *signatureChecker) check(r dht.Record) (signedRecord, error) {
	if !bytes.Contains(r.Key, []byte(ownerTag)) && !bytes.Contains(r.Subkey, []byte(ownerTag)) {
		return signedRecord{Value: r.Value}, nil
	}
	v, err := c.validator()
	if err != nil {
		return signedRecord{}, err
	}
	stripped := v.StripValue(r)
	unsigned := r
	unsigned.Value = stripped
	if ok, _ := v.Validate(unsigned); ok {
		// The unsigned form of a protected record never validates: this one has no usable owner
		// marker ("[owner:" without a closing bracket, say), so nothing protects it.
		return signedRecord{Value: r.Value}, nil
	}
	if ok, reason := v.Validate(r); !ok {
		return signedRecord{Value: stripped, Verdict: signedInvalid, Reason: reason}, nil
	}
	return signedRecord{Value: stripped, Verdict: signedValid}, nil
}

// validator returns the RSASignature that verifies records. dht/validator has no verifier without
// a private key, but RSASignature.Validate checks a record against the key of its owner marker,
// never its own, and StripValue uses no key: any RSASignature will do, so this one gets a
// throwaway key that never signs anything.
func (c *signatureChecker) validator() (*validator.RSASignature, error) {
	if c.verifier != nil {
		return c.verifier, nil
	}
	key, err := rsa.GenerateKey(rand.Reader, verifierKeyBits)
	if err != nil {
		return nil, fmt.Errorf("signature verifier: %w", err)
	}
	v, err := validator.NewRSASignature(key, nil)
	if err != nil {
		return nil, fmt.Errorf("signature verifier: %w", err)
	}
	c.verifier = v
	return v, nil
}
