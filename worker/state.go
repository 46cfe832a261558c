package worker

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hivemind-go/hivemind/dht"
)

// Files of a worker's state directory.
const (
	identityFile = "identity.key"
	nodeIDFile   = "node_id"
	recordsFile  = "records.db"
)

// state is a worker's durable state: its node ID and its node's storage (records). A nil *state
// (no state directory) persists nothing.
type state struct {
	dir     string
	db      *bolt.DB
	records *recordStore
}

// openState creates dir (0700) when missing and opens the records database. The lock on it is held
// until close; a stale lock of a dead worker is free (flock), a live one is waited for up to 5 s.
// A database that is not one (garbage, a directory in its place) is an error naming the file.
func openState(dir string, logger *slog.Logger) (*state, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	path := filepath.Join(dir, recordsFile)
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory, not a records database", ErrState, path)
	}
	db, err := openDB(path, &bolt.Options{Timeout: 5 * time.Second, NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrState, path, err)
	}
	dropped := 0
	err = guard(path, func() error {
		return db.Update(func(tx *bolt.Tx) error {
			if old := tx.Bucket(legacyRecordsBucket); old != nil {
				dropped = old.Stats().KeyN
				if err := tx.DeleteBucket(legacyRecordsBucket); err != nil {
					return err
				}
			}
			_, err := tx.CreateBucketIfNotExists(recordsBucket)
			return err
		})
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrState, path, err)
	}
	if dropped > 0 {
		logger.Warn("records persisted by an earlier format were dropped", "file", path, "records", dropped)
	}
	return &state{dir: dir, db: db, records: &recordStore{db: db, path: path, logger: logger}}, nil
}

// openDB opens a bbolt database, turning a panic on a corrupt file into an error.
func openDB(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	err = guard(path, func() error {
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	return db, err
}

// guard runs f, turning a panic (bbolt panics on some corrupt pages) into an error naming path.
func guard(path string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s is corrupt: %v", path, p)
		}
	}()
	return f()
}

func (s *state) close() error {
	if s == nil {
		return nil
	}
	return s.db.Close()
}

// nodeID returns the persisted node ID, creating and persisting a random one on first use.
func (s *state) nodeID() (dht.ID, error) {
	if s == nil {
		return dht.ID{}, nil
	}
	path := filepath.Join(s.dir, nodeIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		raw, derr := hex.DecodeString(strings.TrimSpace(string(data)))
		if derr == nil && len(raw) == dht.IDLen {
			return dht.ID(raw), nil
		}
		// A corrupt file is replaced: the node ID is not an identity, only a routing position.
	case !errors.Is(err, os.ErrNotExist):
		return dht.ID{}, fmt.Errorf("%w: read %s: %w", ErrState, nodeIDFile, err)
	}
	id := dht.RandomID()
	if err := writeFileAtomic(path, []byte(id.String()+"\n")); err != nil {
		return dht.ID{}, fmt.Errorf("%w: write %s: %w", ErrState, nodeIDFile, err)
	}
	return id, nil
}

// count returns the number of persisted records.
func (s *state) count() int {
	if s == nil {
		return 0
	}
	return s.records.count()
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
