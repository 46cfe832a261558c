package dht

import (
	"context"
	"fmt"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Key is a DHT key: either the msgpack encoding of a Go value (hashed as encoded) or raw bytes that
// hivemind hashes as they are (a Python bytes key). The distinction survives the process boundary.
// The zero Key is the raw empty key.
type Key struct {
	// Data is the msgpack encoding of the key's value, or the raw key bytes when Raw is set.
	Data []byte
	// Raw marks a raw-bytes key.
	Raw bool
}

// RawKey returns a key whose bytes are hashed as they are, like a Python bytes key.
func RawKey(b []byte) Key { return Key{Data: append([]byte(nil), b...), Raw: true} }

// KeyOf builds a key from a Go value: []byte gives a raw key (as in hivemind, bytes are hashed as they
// are), anything else is msgpack-encoded (a string "foo" hashes a3666f6f). A value that cannot be
// encoded is an error wrapping ErrInvalidKey, and so is nil: hivemind's DHTID.generate(None) draws a
// random ID, so None is no key (use RandomID for a random ID).
func KeyOf(v any) (Key, error) {
	switch x := v.(type) {
	case nil:
		return Key{}, fmt.Errorf("%w: nil (hivemind gives None a random ID)", ErrInvalidKey)
	case []byte:
		return RawKey(x), nil
	}
	data, err := msgpack.Marshal(v)
	if err != nil {
		return Key{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return Key{Data: data}, nil
}

// MustKey is KeyOf for keys known to be valid (string literals and the like); it panics otherwise.
func MustKey(v any) Key {
	k, err := KeyOf(v)
	if err != nil {
		panic(err)
	}
	return k
}

// ID returns the key's 160-bit ID: SHA-1 of Data.
func (k Key) ID() ID { return HashID(k.Data) }

// Result is a value found by Get.
//
// A regular value has Value set and Dictionary nil. A dictionary value (stored under subkeys) has
// IsDictionary set and one entry per live subkey in Dictionary; Expiration is then the latest
// expiration among the merged replicas. Values and subkeys are msgpack bytes with signatures already
// stripped by the record validator; decode them with msgpack.Unmarshal.
type Result struct {
	Value        msgpack.Raw
	Expiration   float64
	IsDictionary bool
	Dictionary   []DictionaryEntry
}

// DictionaryEntry is one subkey of a dictionary value.
type DictionaryEntry struct {
	Subkey     msgpack.Raw
	Value      msgpack.Raw
	Expiration float64
}

// GetOptions tune Get and GetMany. The zero value means hivemind's defaults.
type GetOptions struct {
	// Latest searches for the value with the greatest expiration among the contacted replicas and
	// merges dictionaries across them, instead of returning the first live value found.
	Latest bool
	// SufficientExpiration ends the search for a key as soon as a value expiring at or after it is
	// found. Zero means "now" (any live value); Latest overrides it with +inf.
	SufficientExpiration float64
}

// StoreItem is one record to store.
type StoreItem struct {
	Key Key
	// Subkey, when non-nil, stores Value under this subkey of a dictionary value. A Go value or
	// msgpack.Raw.
	Subkey any
	// Value is a Go value of the msgpack value model, or msgpack.Raw for pre-encoded bytes.
	Value any
	// Expiration is the absolute DHT time (Unix seconds) at which the record expires.
	Expiration float64
}

// StoreResult is the outcome of one StoreItem.
//
// Stored alone does not show a store that fell short of its replicas: a store accepted by one of
// the NumReplicas nodes wanted (or by the storing node alone) is Stored too. Accepted counts the
// replicas that hold the item; the storing node's own copy is the one whose Node is the node's ID
// (worth excluding when the node is short-lived).
type StoreResult struct {
	// Stored is true iff at least one replica (this node included) accepted the item.
	Stored bool
	// Replicas lists every replica's answer: each node the item was sent to (one that did not
	// answer was replaced by the next nearest), this node included when it is among the nearest.
	Replicas []ReplicaResult
}

// Accepted counts the replicas that accepted the item (this node's own copy included, when it is
// among them).
func (r StoreResult) Accepted() int {
	n := 0
	for _, rep := range r.Replicas {
		if rep.Accepted {
			n++
		}
	}
	return n
}

// ReplicaResult is one replica's answer to a store.
type ReplicaResult struct {
	Peer PeerID
	Node ID
	// Accepted is the replica's per-item answer; false when it rejected the item or did not respond.
	Accepted bool
	// Err is set when the replica did not respond.
	Err error
}

// Client is the caller-facing key/value API of a DHT. *Node implements it in process; ipc.Client
// implements it against a worker process, so a caller can swap one for the other.
//
// Contract: every method is safe for concurrent use, takes ctx first and returns when ctx is done.
// Get returns (nil, nil) when nothing was found. A record a validator rejects is a false
// StoreResult, not an error. Errors wrap this package's sentinels.
type Client interface {
	Get(ctx context.Context, key Key, opts GetOptions) (*Result, error)
	GetMany(ctx context.Context, keys []Key, opts GetOptions) ([]*Result, error)
	Store(ctx context.Context, item StoreItem) (StoreResult, error)
	StoreMany(ctx context.Context, items []StoreItem) ([]StoreResult, error)
}
