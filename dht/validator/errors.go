package validator

import "errors"

// Sentinel errors of the validator package, returned by constructors, key helpers and
// RSASignature.Check (validation itself never fails: a bad record is invalid, with a reason).
// Check them with errors.Is.
var (
	// ErrInvalidKey: a private key that cannot be parsed or used (not RSA, too small or too large).
	ErrInvalidKey = errors.New("validator: invalid key")
	// ErrInvalidSchema: a SchemaConfig that does not describe a usable schema (unknown type, missing
	// element type, bound on a non-number, regex that does not compile, ...).
	ErrInvalidSchema = errors.New("validator: invalid schema")
	// ErrOwnerKeyNotRSA: a record's owner marker holds a well-formed OpenSSH public key of another
	// algorithm (ssh-ed25519, ecdsa-sha2-*, ssh-dss). hivemind's validate raises on such a record
	// (vectors error kind owner_key_not_rsa); here the record is invalid.
	ErrOwnerKeyNotRSA = errors.New("validator: owner key is not an RSA key")
	// ErrOwnerKeyInvalid: a record's owner marker holds a key that does not parse, or an RSA key
	// outside the usable limits. hivemind's validate raises on the keys it cannot load (vectors error
	// kind owner_key_invalid); here the record is invalid.
	ErrOwnerKeyInvalid = errors.New("validator: owner key does not parse")
)
