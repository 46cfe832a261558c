package worker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/hivemind-go/hivemind/dht"
)

// recordsBucket holds the node's storage: key ID (20 bytes) → encoded record (encodeRecord).
var recordsBucket = []byte("storage")

// legacyRecordsBucket held, in earlier builds, the items stored through the worker (re-stored into
// the network at start). It is dropped at open.
var legacyRecordsBucket = []byte("records")

// Formats of an encoded record (its first byte). Format 1 (earlier builds) is read, never written.
const (
	recordFormatV1 = 1 // format, kind, expiration, value
	recordFormat   = 2 // format, kind, expiration, owner length, owner, value
)

// recordHeaderV1 is the size of a format-1 record without its value: format, kind, expiration.
const recordHeaderV1 = 1 + 1 + 8

// maxOwnerLen bounds a record's owner (a libp2p peer ID's bytes: 34 for an RSA or secp256k1 key's
// SHA-256 multihash, 38 for an inlined Ed25519 key), so its length fits in one byte.
const maxOwnerLen = 255

// errRecord prefixes every decodeRecord error.
var errRecord = errors.New("malformed persisted record")

// encodeRecord is the database value of a record: format (2), kind (1 regular, 2 dictionary), the
// expiration as a big-endian IEEE 754 double, the owner's length (one byte) and bytes (the peer
// whose STORE last changed the key, empty for the node's own: dht.PersistedRecord.Owner), then the
// value bytes as the node keeps them. An owner longer than maxOwnerLen, which no libp2p peer ID
// is, is written as empty (the node's shared account).
func encodeRecord(r dht.PersistedRecord) []byte {
	owner := r.Owner
	if len(owner) > maxOwnerLen {
		owner = ""
	}
	out := make([]byte, recordHeaderV1+1, recordHeaderV1+1+len(owner)+len(r.Value))
	out[0] = recordFormat
	out[1] = byte(r.Kind)
	binary.BigEndian.PutUint64(out[2:], math.Float64bits(r.Expiration))
	out[recordHeaderV1] = byte(len(owner))
	out = append(out, owner...)
	return append(out, r.Value...)
}

// decodeRecord reads a database entry back (format 1 or 2; a format-1 record has no owner). The
// value is a copy (bbolt's slices live only as long as the transaction). The dictionary bytes are
// the node's business: they are checked when loaded.
func decodeRecord(key, value []byte) (dht.PersistedRecord, error) {
	if len(key) != dht.IDLen {
		return dht.PersistedRecord{}, fmt.Errorf("%w: key of %d bytes, want %d", errRecord, len(key), dht.IDLen)
	}
	if len(value) < recordHeaderV1 {
		return dht.PersistedRecord{}, fmt.Errorf("%w: %d bytes, want at least %d", errRecord, len(value), recordHeaderV1)
	}
	if value[0] != recordFormat && value[0] != recordFormatV1 {
		return dht.PersistedRecord{}, fmt.Errorf("%w: format %d, this build reads %d and %d", errRecord, value[0], recordFormatV1, recordFormat)
	}
	kind := dht.ValueKind(value[1])
	if kind != dht.ValueRegular && kind != dht.ValueDictionary {
		return dht.PersistedRecord{}, fmt.Errorf("%w: kind %d", errRecord, value[1])
	}
	exp := math.Float64frombits(binary.BigEndian.Uint64(value[2:recordHeaderV1]))
	if math.IsNaN(exp) || math.IsInf(exp, 0) {
		return dht.PersistedRecord{}, fmt.Errorf("%w: expiration %v", errRecord, exp)
	}
	rest := value[recordHeaderV1:]
	var owner dht.PeerID
	if value[0] == recordFormat {
		if len(rest) < 1 || len(rest)-1 < int(rest[0]) {
			return dht.PersistedRecord{}, fmt.Errorf("%w: owner truncated", errRecord)
		}
		n := int(rest[0])
		owner, rest = dht.PeerID(rest[1:1+n]), rest[1+n:]
	}
	return dht.PersistedRecord{
		Key:        dht.ID(key),
		Kind:       kind,
		Value:      append([]byte(nil), rest...),
		Expiration: exp,
		Owner:      owner,
	}, nil
}

// recordStore is the worker's dht.Persister: the node's storage in the state directory's bbolt
// database, one entry per key. Each Persist is one bbolt transaction. The database is opened
// with NoSync: a committed transaction is in the kernel's page cache, so a kill -9 (or any crash
// of the process) loses nothing acknowledged; a power loss or kernel crash may lose the last
// seconds of writes and is out of scope (DESIGN §4.9 is about the process).
type recordStore struct {
	db     *bolt.DB
	path   string
	logger *slog.Logger
	loaded int // records handed to the node by Load
}

var _ dht.Persister = (*recordStore)(nil)

// Load hands the node every record; entries this build cannot read are logged and skipped. A
// database whose pages are corrupt is an error naming the file.
func (s *recordStore) Load(fn func(dht.PersistedRecord)) error {
	skipped := 0
	err := guard(s.path, func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			return tx.Bucket(recordsBucket).ForEach(func(k, v []byte) error {
				r, err := decodeRecord(k, v)
				if err != nil {
					skipped++
					s.logger.Warn("persisted record skipped", "file", s.path, "err", err)
					return nil
				}
				s.loaded++
				fn(r)
				return nil
			})
		})
	})
	if err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrState, s.path, err)
	}
	if skipped > 0 {
		s.logger.Warn("persisted records skipped", "file", s.path, "skipped", skipped)
	}
	return nil
}

// Persist writes the records in one transaction.
func (s *recordStore) Persist(records []dht.PersistedRecord) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(recordsBucket)
		for _, r := range records {
			if err := b.Put(r.Key[:], encodeRecord(r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: write %s: %w", ErrState, s.path, err)
	}
	return nil
}

// prune deletes the records expired at now.
func (s *recordStore) prune(now float64) error {
	err := guard(s.path, func() error {
		return s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(recordsBucket)
			var dead [][]byte
			err := b.ForEach(func(k, v []byte) error {
				if r, err := decodeRecord(k, v); err == nil && r.Expiration < now {
					dead = append(dead, append([]byte(nil), k...))
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, k := range dead {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("%w: prune %s: %w", ErrState, s.path, err)
	}
	return nil
}

// count returns the number of persisted records (expired ones included until pruned).
func (s *recordStore) count() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(recordsBucket).Stats().KeyN
		return nil
	})
	return n
}
