package dht

// Record is what validators see: one stored item exactly as it travels on the wire (hivemind's
// DHTRecord).
type Record struct {
	// Key is the 20-byte key ID.
	Key []byte
	// Subkey is the msgpack of the subkey, or msgpack nil (0xc0) for a regular value.
	Subkey []byte
	// Value is the msgpack of the value (with a signature appended when a validator signed it).
	Value []byte
	// Expiration is the absolute DHT time at which the record expires.
	Expiration float64
}

// Subkey tags with a special meaning on the wire (StoreRequest.subkeys).
const (
	// TagRegular (msgpack nil) marks a regular, non-dictionary value.
	TagRegular = "\xc0"
	// TagDictionary (empty) marks a whole serialized dictionary value.
	TagDictionary = ""
)

// RecordValidator checks, signs and strips records, like hivemind's RecordValidatorBase. A Node signs
// every record it originates (SignValue), validates every record it stores or receives (Validate),
// and strips what it returns to callers (StripValue).
//
// Contract: implementations are safe for concurrent use, never panic on hostile input (a malformed
// record is simply invalid) and never retain or modify the Record's slices.
type RecordValidator interface {
	// Validate reports whether the record is acceptable. reason explains a rejection.
	Validate(r Record) (ok bool, reason string)
	// SignValue returns the value to store: r.Value, possibly with a signature appended.
	SignValue(r Record) []byte
	// StripValue returns r.Value with whatever SignValue added removed.
	StripValue(r Record) []byte
	// Priority orders validators in a composite: higher priority signs last and strips first
	// (hivemind: schema 0, RSA 10).
	Priority() int
	// MergeWith absorbs other into the receiver when they are of the same kind and reports whether it
	// did (hivemind's merge_with); a composite then drops other.
	MergeWith(other RecordValidator) bool
}
