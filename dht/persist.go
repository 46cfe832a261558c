package dht

import (
	"maps"
	"slices"
	"sync"
)

// PersistedRecord is the whole state of one key of a node's storage, as a Persister keeps it.
type PersistedRecord struct {
	// Key is the key's ID.
	Key ID
	// Kind is ValueRegular or ValueDictionary.
	Kind ValueKind
	// Value is what rpc_find serves for the key: a regular value's bytes (msgpack, with the
	// validator's signature if any), or the packed dictionary (msgpack ext 0x50 holding every live
	// subkey with its value and expiration; see UnpackDictionary).
	Value []byte
	// Expiration is the record's expiration (for a dictionary, the latest of its subkeys').
	Expiration float64
	// Owner is the peer whose STORE last changed the key, whose account the storage charges it to
	// (see LocalStorage: eviction is fair between peers); "" for the node's own records and those
	// of unknown origin. A Persister that does not keep it loses only that fairness for reloaded
	// records: they all go to the shared account "".
	Owner PeerID
}

// Persister keeps a node's storage durable (DESIGN.md §4.9: a kill -9 loses nothing that was
// acknowledged). It is the storage's port, as Transport is the network's; Config.Persister plugs it
// in, MemoryPersister is its in-memory twin. The cache is never persisted.
//
// Contract:
//
//   - Load is called once, by New, before the node serves anything. The node feeds every record
//     straight into its storage, in its Owner's account: no validation (each record passed it when
//     it was stored), no network traffic. Records expired by then are skipped, and the storage
//     bounds apply (with LocalStorage's eviction rule). A Load error fails New; a record the node
//     cannot use (an unknown Kind, a dictionary that does not unpack) is logged and skipped.
//   - Persist is called after a request changed the storage, with the new state of every key it
//     changed (one call per inbound STORE, one per key for the node's own replica in StoreMany),
//     each record replacing whatever is persisted under its key. It is never called under the
//     node's state lock, and calls never overlap: the node serializes them, in the order of the
//     mutations, so a later state of a key never reaches the Persister before an earlier one and a
//     Persister may simply overwrite.
//   - Persist returns once the records are as durable as the Persister promises; the node
//     acknowledges the items only then. An error makes every item of those keys a false answer
//     (and is logged); the storage keeps them (they are served, but were not acknowledged).
//   - The node never deletes: records that expire, or that the storage bounds evict, stay persisted
//     until the Persister drops them. A Persister may drop a record whose expiration is past at any
//     time.
//   - Record values are never modified by either side; a Persister may retain them.
//
// Load and Persist are never called concurrently with each other by one node.
type Persister interface {
	// Load calls fn with every persisted record, in any order, and returns an error when the
	// records cannot be read.
	Load(fn func(PersistedRecord)) error
	// Persist durably writes records, all of them or none, each replacing the record of its key.
	Persist(records []PersistedRecord) error
}

// MemoryPersister is the in-memory Persister: a map from key to its latest record. It makes a
// node's storage outlive the node within one process (a "restart" in a test or a simulation). The
// zero value is ready to use; it is safe for concurrent use.
type MemoryPersister struct {
	mu      sync.Mutex
	records map[ID]PersistedRecord
	writes  int
}

var _ Persister = (*MemoryPersister)(nil)

// Load calls fn with every record, in key order.
func (m *MemoryPersister) Load(fn func(PersistedRecord)) error {
	m.mu.Lock()
	records := make([]PersistedRecord, 0, len(m.records))
	for _, k := range slices.SortedFunc(maps.Keys(m.records), ID.Cmp) {
		records = append(records, m.records[k])
	}
	m.mu.Unlock()
	for _, r := range records {
		fn(r)
	}
	return nil
}

// Persist stores the records.
func (m *MemoryPersister) Persist(records []PersistedRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = make(map[ID]PersistedRecord)
	}
	for _, r := range records {
		m.records[r.Key] = r
	}
	m.writes++
	return nil
}

// Record returns the record persisted under key.
func (m *MemoryPersister) Record(key ID) (PersistedRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[key]
	return r, ok
}

// Len returns the number of records.
func (m *MemoryPersister) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.records)
}

// Writes returns the number of Persist calls so far.
func (m *MemoryPersister) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}
