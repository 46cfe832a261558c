package main

import (
	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// Verdicts printed in a record's "signed" field.
const (
	signedValid   = "valid"
	signedInvalid = "invalid"
)

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

// checkSigned returns what get prints of r, checking it as a hivemind peer with an
// RSASignatureValidator would (dht/validator): a record whose key or subkey holds an owner marker
// "[owner:ssh-rsa …]" is protected, and valid only with exactly one signature by that key; it comes
// back stripped of its signatures, with the verdict. Records without an owner marker come back
// untouched, with no verdict (a validator passes them, and a value that happens to contain
// "[signature:" is left whole).
func checkSigned(r dht.Record) signedRecord {
	if !validator.IsProtected(r) {
		return signedRecord{Value: r.Value}
	}
	stripped := validator.StripSignatures(r.Value)
	if err := validator.CheckSignature(r); err != nil {
		return signedRecord{Value: stripped, Verdict: signedInvalid, Reason: err.Error()}
	}
	return signedRecord{Value: stripped, Verdict: signedValid}
}
