package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/internal/cli"
)

// TestStoreArgumentShapes: where KEY, VALUE, flags and initial peers may stand on store's command
// line, values and keys that start with "-" included (issue: `store temperature -1` and even
// `store -- temperature -1` failed with "flag provided but not defined: -1").
func TestStoreArgumentShapes(t *testing.T) {
	const p1, p2 = "/ip4/127.0.0.1/tcp/1/p2p/QmA", "/ip4/127.0.0.1/tcp/2/p2p/QmB"
	tests := []struct {
		name   string
		args   []string
		key    string
		value  any // as msgpack encodes it
		subkey any
		peers  cli.List
		ttl    float64
		usage  string // non-empty: a usage error containing this
	}{
		{name: "key value", args: []string{"k", "1"}, key: "k", value: int64(1)},
		{name: "a negative value", args: []string{"temperature", "-1"}, key: "temperature", value: int64(-1)},
		{name: "a negative float", args: []string{"t", "-2.5e3"}, key: "t", value: -2500.0},
		{name: "a negative value then flags", args: []string{"t", "-1", "--initial-peers", p1, "--ttl", "9"}, key: "t", value: int64(-1), peers: cli.List{p1}, ttl: 9},
		{name: "flags then a negative value", args: []string{"--initial-peers", p1, "t", "--ttl", "9", "-1"}, key: "t", value: int64(-1), peers: cli.List{p1}, ttl: 9},
		{name: "peers as arguments, then a negative value", args: []string{"t", "--initial-peers", p1, p2, "-1"}, key: "t", value: int64(-1), peers: cli.List{p1, p2}},
		{name: "double dash before the key", args: []string{"--initial-peers", p1, "--", "t", "-1"}, key: "t", value: int64(-1), peers: cli.List{p1}},
		{name: "a key that starts with a dash", args: []string{"--", "-k", "-1"}, key: "-k", value: int64(-1)},
		{name: "double dash before the value", args: []string{"t", "--", "-1"}, key: "t", value: int64(-1)},
		{name: "a value that looks like a flag", args: []string{"t", "--", "--ttl"}, usage: "VALUE must be JSON"},
		{name: "a multiaddr after the double dash is a key", args: []string{"--raw-key", "--", p2, "1"}, key: p2, value: int64(1)},
		{name: "a negative subkey and value", args: []string{"t", "--subkey", "-3", "-1"}, key: "t", value: int64(-1), subkey: int64(-3)},
		{name: "a negative ttl", args: []string{"t", "1", "--ttl", "-1"}, usage: "--ttl must be positive"},
		{name: "a negative key without double dash", args: []string{"-1", "t"}, usage: `flag provided but not defined: -1 (an argument that starts with "-" goes after "--")`},
		{name: "a dash word after the key is a flag", args: []string{"t", "-x"}, usage: "flag provided but not defined: -x"},
		{name: "a third argument", args: []string{"t", "-1", "-2"}, usage: "flag provided but not defined: -2"},
		{name: "a third argument after the double dash", args: []string{"t", "--", "-1", "-2"}, usage: "got 3 argument(s)"},
		{name: "hex that starts with a dash", args: []string{"--value-hex", "t", "-1"}, usage: "VALUE is not hex"},
		{name: "no value", args: []string{"t"}, usage: "got 1 argument(s)"},
		{name: "too few replicas wanted", args: []string{"t", "1", "--num-replicas", "0"}, usage: "--num-replicas must be at least 1"},
		{name: "more replicas required than wanted", args: []string{"t", "1", "--num-replicas", "3", "--min-replicas", "4"}, usage: "--min-replicas must be between 0 and --num-replicas (3), got 4"},
		{name: "negative replicas required", args: []string{"t", "1", "--min-replicas", "-1"}, usage: "--min-replicas must be between 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseStore(tc.args, io.Discard)
			if tc.usage != "" {
				var u *cli.UsageError
				require.ErrorAs(t, err, &u)
				assert.Contains(t, u.Msg, tc.usage)
				return
			}
			require.NoError(t, err)
			wantKey, err := dht.KeyOf(tc.key)
			if c.o.rawKey {
				wantKey = dht.RawKey([]byte(tc.key))
			}
			require.NoError(t, err)
			assert.Equal(t, tc.key, c.keyText)
			assert.Equal(t, wantKey, c.item.Key)
			assert.Equal(t, mustPack(t, tc.value), mustPack(t, c.item.Value))
			if tc.subkey != nil {
				assert.Equal(t, mustPack(t, tc.subkey), mustPack(t, c.item.Subkey))
			} else {
				assert.Nil(t, c.item.Subkey)
			}
			assert.Equal(t, tc.peers, c.o.peers)
			wantTTL := tc.ttl
			if wantTTL == 0 {
				wantTTL = 300
			}
			assert.Equal(t, wantTTL, c.ttl) // exact: parsed from text
		})
	}
}

// TestStoreReport: the printed replica counts, and the exit status of --min-replicas. The
// short-lived node's own copy is listed but never counted: it leaves with the command.
func TestStoreReport(t *testing.T) {
	self, peer1, peer2, peer3 := dht.ID{1}, dht.ID{2}, dht.ID{3}, dht.ID{4}
	local := dht.ReplicaResult{Peer: "self", Node: self, Accepted: true}
	ok := func(id dht.ID) dht.ReplicaResult {
		return dht.ReplicaResult{Peer: dht.PeerID(id.Bytes()[:4]), Node: id, Accepted: true}
	}
	rejected := func(id dht.ID) dht.ReplicaResult {
		return dht.ReplicaResult{Peer: dht.PeerID(id.Bytes()[:4]), Node: id}
	}
	silent := func(id dht.ID) dht.ReplicaResult {
		return dht.ReplicaResult{Peer: dht.PeerID(id.Bytes()[:4]), Node: id, Err: dht.ErrNoResponse}
	}
	tests := []struct {
		name     string
		replicas []dht.ReplicaResult
		wanted   int
		min      int
		accepted int
		stored   bool
		short    []string // non-empty: errTooFewReplicas, saying these
		notShort []string // … and not these
	}{
		{name: "every replica accepted", replicas: []dht.ReplicaResult{ok(peer1), ok(peer2), ok(peer3)}, wanted: 3, min: 3, accepted: 3, stored: true},
		{name: "fewer than wanted, enough", replicas: []dht.ReplicaResult{local, ok(peer1), ok(peer2)}, wanted: 5, min: 2, accepted: 2, stored: true},
		{name: "only the local copy", replicas: []dht.ReplicaResult{local}, wanted: 5, min: 1, accepted: 0,
			short: []string{"0 of 5 wanted, fewer than --min-replicas 1", "this short-lived node", "only 0 peer(s) answered"}},
		{name: "short of the minimum", replicas: []dht.ReplicaResult{ok(peer1), rejected(peer2), silent(peer3)}, wanted: 5, min: 3, accepted: 1, stored: true,
			short: []string{"1 of 5 wanted, fewer than --min-replicas 3", "1 rejected it", "1 did not answer", "only 2 peer(s) answered"}},
		{name: "enough peers found, some silent", replicas: []dht.ReplicaResult{ok(peer1), silent(peer2), silent(peer3)}, wanted: 3, min: 2, accepted: 1, stored: true,
			short: []string{"1 of 3 wanted, fewer than --min-replicas 2", "2 did not answer"}, notShort: []string{"peer(s) answered"}},
		{name: "every peer rejected", replicas: []dht.ReplicaResult{rejected(peer1), rejected(peer2)}, wanted: 2, min: 1, accepted: 0,
			short: []string{"0 of 2 wanted", "2 rejected it (a newer value exists, or a validator refused it)"}},
		{name: "no minimum", replicas: []dht.ReplicaResult{local}, wanted: 5, min: 0, accepted: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := storeCommand{keyText: "k", item: dht.StoreItem{Expiration: 100}, numReplicas: tc.wanted, minReplicas: tc.min}
			out, err := c.report(dht.StoreResult{Stored: true, Replicas: tc.replicas}, self)
			checkPrinted(t, out)
			assert.Equal(t, tc.accepted, field(t, out, "replicas_accepted"))
			assert.Equal(t, tc.wanted, field(t, out, "replicas_wanted"))
			assert.Equal(t, tc.stored, field(t, out, "stored"))
			printed, err2 := json.Marshal(field(t, out, "replicas"))
			require.NoError(t, err2)
			var reps []map[string]any
			require.NoError(t, json.Unmarshal(printed, &reps))
			require.Len(t, reps, len(tc.replicas))
			for i, r := range tc.replicas {
				assert.Equal(t, r.Node == self, reps[i]["local"] == true, "replica %d", i)
				_, hasErr := reps[i]["error"]
				assert.Equal(t, r.Err != nil, hasErr, "replica %d", i)
			}
			if len(tc.short) == 0 {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errTooFewReplicas)
			for _, s := range tc.short {
				assert.Contains(t, err.Error(), s)
			}
			for _, s := range tc.notShort {
				assert.NotContains(t, err.Error(), s)
			}
			assert.False(t, strings.Contains(err.Error(), "\n"), "one line")
			var u *cli.UsageError
			assert.False(t, errors.As(err, &u), "a runtime failure (exit status 1), not a usage error")
		})
	}
}
