package worker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// Files of a worker's state directory.
const (
	identityFile = "identity.key"
	nodeIDFile   = "node_id"
	recordsFile  = "records.db"
)

var recordsBucket = []byte("records")

// state is a worker's durable state: its node ID and the records stored through it. A nil *state
// (no state directory) persists nothing.
type state struct {
	dir string
	db  *bolt.DB
}

// openState creates dir (0700) when missing and opens the records database. The lock on it is held
// until close; a stale lock of a dead worker is free (flock), a live one is waited for up to 5 s.
func openState(dir string) (*state, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	db, err := bolt.Open(filepath.Join(dir, recordsFile), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrState, recordsFile, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(recordsBucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrState, recordsFile, err)
	}
	return &state{dir: dir, db: db}, nil
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

// recordKey is the database key of an item: the key ID, then 0 for a regular value or 1 and the
// subkey's msgpack for a dictionary entry.
func recordKey(item *ipcpb.StoreItem) []byte {
	id := dht.Key{Data: item.GetKey().GetData(), Raw: item.GetKey().GetRaw()}.ID()
	k := append([]byte(nil), id[:]...)
	if item.GetHasSubkey() {
		return append(append(k, 1), item.GetSubkey()...)
	}
	return append(k, 0)
}

// put persists accepted items, each replacing an older record of the same key and subkey. It
// returns after the transaction is on disk.
func (s *state) put(items []*ipcpb.StoreItem) error {
	if s == nil || len(items) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(recordsBucket)
		for _, item := range items {
			k := recordKey(item)
			if old := b.Get(k); old != nil {
				var prev ipcpb.StoreItem
				if proto.Unmarshal(old, &prev) == nil && prev.GetExpiration() >= item.GetExpiration() {
					continue
				}
			}
			v, err := proto.Marshal(item)
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// live returns the records that have not expired at now and deletes the others.
func (s *state) live(now float64) ([]*ipcpb.StoreItem, error) {
	if s == nil {
		return nil, nil
	}
	var items []*ipcpb.StoreItem
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(recordsBucket)
		var dead [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var item ipcpb.StoreItem
			if proto.Unmarshal(v, &item) != nil || item.GetExpiration() <= now {
				dead = append(dead, bytes.Clone(k))
				return nil
			}
			items = append(items, &item)
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
	return items, err
}

// count returns the number of persisted records.
func (s *state) count() int {
	if s == nil {
		return 0
	}
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(recordsBucket).Stats().KeyN
		return nil
	})
	return n
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
