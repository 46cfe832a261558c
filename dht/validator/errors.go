package validator

import "errors"

// Sentinel errors of the validator package, returned by constructors and key helpers (validation
// itself never fails: a bad record is invalid, with a reason). Check them with errors.Is.
var (
	// ErrInvalidKey: a private key that cannot be parsed or used (not RSA, too small or too large).
	ErrInvalidKey = errors.New("validator: invalid key")
	// ErrInvalidSchema: a SchemaConfig that does not describe a usable schema (unknown type, missing
	// element type, bound on a non-number, regex that does not compile, ...).
	ErrInvalidSchema = errors.New("validator: invalid schema")
)
