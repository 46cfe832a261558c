package worker

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// FuzzDecodeRecord: decoding a database entry (a file's bytes) never panics; what it accepts
// encodes (in the current format) to bytes that decode to the same record, and a current-format
// entry encodes back to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	id := dht.HashID([]byte("k"))
	f.Add(id[:], encodeRecord(dht.PersistedRecord{Key: id, Kind: dht.ValueRegular, Value: []byte{0xa1, 'v'}, Expiration: 1.7e9}))
	f.Add(id[:], encodeRecord(dht.PersistedRecord{Key: id, Kind: dht.ValueDictionary, Value: []byte{0xc7, 0, 0x50}, Expiration: 12.5, Owner: "peer"}))
	f.Add(id[:], encodeRecord(dht.PersistedRecord{Key: id, Kind: dht.ValueRegular, Expiration: 0}))
	f.Add(id[:], []byte{recordFormat, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(id[:], []byte{recordFormat, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'})
	f.Add(id[:], append([]byte{recordFormatV1, 1}, binary.BigEndian.AppendUint64(nil, math.Float64bits(1.7e9))...))
	f.Add(id[:], append([]byte{recordFormatV1, 1}, binary.BigEndian.AppendUint64(nil, math.Float64bits(math.NaN()))...))
	f.Add(id[:], []byte{2, 1, 0})
	f.Add([]byte("short"), []byte{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r, err := decodeRecord(key, value)
		if err != nil {
			return
		}
		enc := encodeRecord(r)
		again, err := decodeRecord(key, enc)
		if err != nil || !bytes.Equal(r.Key[:], key) || !reflect.DeepEqual(again, r) {
			t.Fatalf("%x/%x decodes to %+v, which encodes to %x: %+v %v", key, value, r, enc, again, err)
		}
		if value[0] == recordFormat && !bytes.Equal(enc, value) {
			t.Fatalf("%x/%x decodes to %+v, which encodes differently: %x", key, value, r, enc)
		}
	})
}

// TestRecordOwnerSurvives: the owner of a record (the fair-eviction account) survives the
// database; a format-1 record of an earlier build reads with no owner.
func TestRecordOwnerSurvives(t *testing.T) {
	id := dht.HashID([]byte("k"))
	in := dht.PersistedRecord{Key: id, Kind: dht.ValueRegular, Value: []byte{0xa1, 'v'}, Expiration: 1.7e9, Owner: "\x12\x20peer"}
	got, err := decodeRecord(id[:], encodeRecord(in))
	require.NoError(t, err)
	require.Equal(t, in, got)
	v1 := append(append([]byte{recordFormatV1, 1}, binary.BigEndian.AppendUint64(nil, math.Float64bits(1.7e9))...), 0xa1, 'v')
	got, err = decodeRecord(id[:], v1)
	require.NoError(t, err)
	in.Owner = ""
	require.Equal(t, in, got)
	_, err = decodeRecord(id[:], []byte{recordFormat, 1, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'})
	require.ErrorIs(t, err, errRecord)
}

// TestRecordStoreRoundTrip: what Persist wrote, Load yields (each key's latest state); prune drops
// the expired records; unreadable entries are skipped.
func TestRecordStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	st, err := openState(dir, quiet())
	require.NoError(t, err)
	a, b := dht.HashID([]byte("a")), dht.HashID([]byte("b"))
	require.NoError(t, st.records.Persist([]dht.PersistedRecord{
		{Key: a, Kind: dht.ValueRegular, Value: []byte{1}, Expiration: 100},
		{Key: b, Kind: dht.ValueDictionary, Value: []byte{2}, Expiration: 50},
	}))
	require.NoError(t, st.records.Persist([]dht.PersistedRecord{{Key: a, Kind: dht.ValueRegular, Value: []byte{3}, Expiration: 200}}))
	require.NoError(t, st.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(recordsBucket).Put([]byte("bad key"), []byte{9})
	}))
	require.NoError(t, st.records.prune(60))
	assert.Equal(t, 2, st.records.count(), "b expired; the unreadable entry stays (it is skipped at load)")
	var got []dht.PersistedRecord
	require.NoError(t, st.records.Load(func(r dht.PersistedRecord) { got = append(got, r) }))
	assert.Equal(t, []dht.PersistedRecord{{Key: a, Kind: dht.ValueRegular, Value: []byte{3}, Expiration: 200}}, got)
	assert.Equal(t, 1, st.records.loaded)
	require.NoError(t, st.close())
}

// TestStateDirUnusable: a records.db that is not a database fails Configure with an error naming
// the file (CI runs as root: permission bits prove nothing, so the file is made unusable).
func TestStateDirUnusable(t *testing.T) {
	garbage := bytes.Repeat([]byte("not a bbolt database "), 1000)
	for _, tc := range []struct {
		name  string
		spoil func(path string) error
	}{
		{name: "directory", spoil: func(p string) error { return os.Mkdir(p, 0o700) }},
		{name: "garbage", spoil: func(p string) error { return os.WriteFile(p, garbage, 0o600) }},
		{name: "truncated", spoil: func(p string) error {
			st, err := openState(filepath.Dir(p), quiet())
			if err != nil {
				return err
			}
			if err := st.close(); err != nil {
				return err
			}
			return os.Truncate(p, 100)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir := t.TempDir()
			path := filepath.Join(dir, recordsFile)
			require.NoError(t, tc.spoil(path))
			s := testServer(t)
			_, err := s.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: &ipcpb.NodeConfig{StateDir: dir}})
			require.Error(t, err)
			assert.Equal(t, codes.FailedPrecondition, status.Code(err))
			assert.Contains(t, status.Convert(err).Message(), path)
		})
	}
}

// TestReplicasArePersisted: records another peer replicates onto a worker's node (rpc_store), not
// only those stored through the worker, are in its database; a restarted worker on the same state
// directory, alone, serves them.
func TestReplicasArePersisted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	a := testServer(t)
	ra := configure(t, ctx, a, &ipcpb.NodeConfig{StateDir: dir})
	b := testServer(t)
	configure(t, ctx, b, &ipcpb.NodeConfig{InitialPeers: ra.GetPeer().GetVisibleMaddrs()})

	key := &ipcpb.Key{Data: pack(t, "replica")}
	exp := dht.SystemClock{}.Now() + 600
	st, err := b.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key, Value: pack(t, "from b"), Expiration: exp}})
	require.NoError(t, err)
	require.True(t, st.GetResult().GetStored())
	stats, err := a.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), stats.GetPersistedRecords(), "the replica b sent is in a's database")
	require.NoError(t, b.Close(ctx))
	require.NoError(t, a.Close(ctx))

	a2 := testServer(t)
	r2 := configure(t, ctx, a2, &ipcpb.NodeConfig{StateDir: dir})
	assert.Equal(t, uint64(1), r2.GetReloadedRecords())
	got, err := a2.Get(ctx, &ipcpb.GetRequest{Key: key})
	require.NoError(t, err)
	require.True(t, got.GetResult().GetFound(), "a restarted worker, alone, serves the replica")
	assert.Equal(t, pack(t, "from b"), got.GetResult().GetValue().GetValue())
}
