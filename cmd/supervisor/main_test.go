package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

func TestJSONValuesRoundTripThroughMsgpack(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // JSON printed after msgpack encode/decode; empty: same as in
	}{
		{name: "string", in: `"hello"`},
		{name: "int", in: `42`},
		{name: "negative", in: `-7`},
		{name: "big uint", in: `18446744073709551615`},
		{name: "float", in: `1.5`},
		{name: "null", in: `null`},
		{name: "bool", in: `true`},
		{name: "list", in: `[1,"a",[true]]`},
		{name: "ordered object", in: `{"z":1,"a":{"$bytes":"AAE="}}`},
		{name: "bytes", in: `{"$bytes":"3q2+7w=="}`},
		{name: "tuple", in: `{"$tuple":[1,2]}`},
		{name: "ext", in: `{"$ext":81,"data":"AQI="}`},
		{name: "bytes-keyed map", in: `{"$map":[[{"$bytes":"YQ=="},1],["b",2]]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := fromJSON(tt.in)
			require.NoError(t, err)
			packed, err := msgpack.Marshal(v)
			require.NoError(t, err)
			back, err := msgpack.Unmarshal(packed)
			require.NoError(t, err)
			out, err := json.Marshal(toJSON(back))
			require.NoError(t, err)
			want := tt.want
			if want == "" {
				want = tt.in
			}
			assert.JSONEq(t, want, string(out))
			if tt.name == "ordered object" {
				assert.Equal(t, tt.in, string(out), "key order is kept")
			}
		})
	}
}

func TestFromJSONRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":          `hello`,
		"trailing":          `1 2`,
		"too big int":       `123456789012345678901234567890`,
		"bad bytes":         `{"$bytes": 5}`,
		"bad ext code":      `{"$ext": 1000, "data": ""}`,
		"bad ext data":      `{"$ext": 1, "data": "%%"}`,
		"bad timestamp":     `{"$ext": -1, "data": "AQID"}`, // 3 bytes: msgpack-python refuses it too
		"ext read as bytes": `{"$ext": 7, "data": "AQI="}`,  // hivemind decodes unknown codes to their payload
		"ext read as tuple": `{"$ext": 64, "data": "kQE="}`, // 0x40 holding [1]: a $tuple
		"bad map pairs":     `{"$map": [1]}`,
		"bad map key":       `{"$map": [[1, 2]]}`,
		"bad tuple":         `{"$tuple": 1}`,
		"unclosed array":    `[1,`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := fromJSON(in)
			assert.Error(t, err)
		})
	}
}

func TestGetJSONShapes(t *testing.T) {
	pack := func(v any) msgpack.Raw { b, _ := msgpack.Marshal(v); return b }
	dict := &dht.Result{IsDictionary: true, Expiration: 20, Dictionary: []dht.DictionaryEntry{
		{Subkey: pack("alice"), Value: pack(1), Expiration: 10},
		{Subkey: pack(int64(7)), Value: pack([]byte{1}), Expiration: 20},
	}}
	strDict := &dht.Result{IsDictionary: true, Expiration: 20, Dictionary: []dht.DictionaryEntry{
		{Subkey: pack("alice"), Value: pack(1), Expiration: 10},
		{Subkey: pack("bob"), Value: pack(2), Expiration: 20},
	}}
	oneDict := &dht.Result{IsDictionary: true, Expiration: 20, Dictionary: []dht.DictionaryEntry{
		{Subkey: pack("1"), Value: pack(1), Expiration: 10},
		{Subkey: pack(int64(1)), Value: pack(2), Expiration: 20},
	}}
	tagDict := &dht.Result{IsDictionary: true, Expiration: 20, Dictionary: []dht.DictionaryEntry{
		{Subkey: pack("$bytes"), Value: pack(1), Expiration: 10},
	}}
	tests := []struct {
		name      string
		res       *dht.Result
		hasSubkey bool
		subkey    any
		want      string
	}{
		{name: "missing", want: `{"key":"k","found":false}`},
		{name: "regular", res: &dht.Result{Value: pack("v"), Expiration: 5}, want: `{"key":"k","found":true,"value":"v","expiration_time":5}`},
		{name: "dictionary of string subkeys", res: strDict, want: `{"key":"k","found":true,"value":{"alice":{"value":1,"expiration_time":10},"bob":{"value":2,"expiration_time":20}},"expiration_time":20}`},
		{name: "dictionary with an int subkey", res: dict, want: `{"key":"k","found":true,"value":{"$map":[["alice",{"value":1,"expiration_time":10}],[7,{"value":{"$bytes":"AQ=="},"expiration_time":20}]]},"expiration_time":20}`},
		{name: "subkeys 1 and \"1\"", res: oneDict, want: `{"key":"k","found":true,"value":{"$map":[["1",{"value":1,"expiration_time":10}],[1,{"value":2,"expiration_time":20}]]},"expiration_time":20}`},
		{name: "a tag as a subkey", res: tagDict, want: `{"key":"k","found":true,"value":{"$map":[["$bytes",{"value":1,"expiration_time":10}]]},"expiration_time":20}`},
		{name: "one subkey", res: dict, hasSubkey: true, subkey: "alice", want: `{"key":"k","subkey":"alice","found":true,"value":1,"expiration_time":10}`},
		{name: "absent subkey", res: dict, hasSubkey: true, subkey: "bob", want: `{"key":"k","subkey":"bob","found":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := getJSON("k", tt.res, tt.hasSubkey, tt.subkey)
			require.NoError(t, err)
			b, err := json.Marshal(out)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b))
		})
	}
}

// TestGetRawShapes: --raw prints the stored bytes as hex, undecoded, bytes that are not msgpack
// included; without it such bytes are an error that points to --raw.
func TestGetRawShapes(t *testing.T) {
	pack := func(v any) msgpack.Raw { b, _ := msgpack.Marshal(v); return b }
	dict := &dht.Result{IsDictionary: true, Expiration: 20, Dictionary: []dht.DictionaryEntry{
		{Subkey: pack("alice"), Value: pack(1), Expiration: 10},
		{Subkey: []byte{0xc1}, Value: []byte{0xc1}, Expiration: 20},
	}}
	tests := []struct {
		name        string
		res         *dht.Result
		subkey      any
		want        string
		undecodable bool // without --raw, an error
	}{
		{name: "regular", res: &dht.Result{Value: []byte{0xc1, 0x02}, Expiration: 5}, undecodable: true, want: `{"key":"k","found":true,"value_hex":"c102","expiration_time":5}`},
		{name: "dictionary", res: dict, undecodable: true, want: `{"key":"k","found":true,"dictionary":[{"subkey_hex":"a5616c696365","value_hex":"01","expiration_time":10},{"subkey_hex":"c1","value_hex":"c1","expiration_time":20}],"expiration_time":20}`},
		{name: "one subkey", res: dict, subkey: "alice", want: `{"key":"k","subkey":"alice","found":true,"value_hex":"01","expiration_time":10}`},
		{name: "missing", want: `{"key":"k","found":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := getView{name: "k", keyID: dht.MustKey("k").ID().Bytes(), raw: true}
			if tt.subkey != nil {
				v.subkey, v.wantSubkey = tt.subkey, pack(tt.subkey)
			}
			out, err := v.render(tt.res)
			require.NoError(t, err)
			b, err := json.Marshal(out)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b))
			v.raw = false
			_, err = v.render(tt.res)
			if tt.undecodable {
				require.ErrorContains(t, err, "not valid msgpack (--raw prints its bytes)")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// TestSplitPeers: multiaddrs among the positional arguments before "--" are more initial peers;
// after it they are arguments.
func TestSplitPeers(t *testing.T) {
	const a, b, c = "/ip4/127.0.0.1/tcp/1/p2p/A", "/ip4/127.0.0.1/tcp/2/p2p/B", "/ip4/127.0.0.1/tcp/3/p2p/C"
	var peers cli.List
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&peers, "initial-peers", "")
	latest := fs.Bool("latest", false, "")
	pos, err := cli.ParseArgs(fs, []string{"key", "--latest", "--initial-peers", a, b, "--", "--x", c}, nil)
	require.NoError(t, err)
	assert.True(t, *latest)
	assert.Equal(t, []string{"key", "--x", c}, splitPeers(pos, &peers))
	assert.Equal(t, cli.List{a, b}, peers)
}

func TestShiftNodePorts(t *testing.T) {
	n := ipc.NodeConfig{
		HostMaddrs:     []string{"/ip4/0.0.0.0/tcp/31337", "/ip4/0.0.0.0/udp/31337/quic-v1", "/ip4/127.0.0.1/tcp/0"},
		AnnounceMaddrs: []string{"/ip4/203.0.113.1/tcp/31337"},
	}
	got := shiftNodePorts(n, 2)
	assert.Equal(t, []string{"/ip4/0.0.0.0/tcp/31339", "/ip4/0.0.0.0/udp/31339/quic-v1", "/ip4/127.0.0.1/tcp/0"}, got.HostMaddrs)
	assert.Equal(t, []string{"/ip4/203.0.113.1/tcp/31339"}, got.AnnounceMaddrs)
	assert.Equal(t, "/ip4/0.0.0.0/tcp/31337", n.HostMaddrs[0], "the caller's slice is untouched")
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{name: "no command", args: nil, code: 2},
		{name: "help", args: []string{"help"}, code: 0},
		{name: "run --help", args: []string{"run", "--help"}, code: 0},
		{name: "run with an argument", args: []string{"run", "extra"}, code: 2},
		{name: "run bad policy", args: []string{"run", "--restart", "sometimes"}, code: 2},
		{name: "run zero workers", args: []string{"run", "--workers", "0"}, code: 2},
		{name: "store bad ttl", args: []string{"store", "k", "1", "--ttl", "-1", "--initial-peers", "/ip4/127.0.0.1/tcp/1/p2p/QmVrH6p1osxWeQTcffq483hdda8Ypx93dEW3NWkurYJJLv"}, code: 2},
		{name: "store bad hex", args: []string{"store", "k", "zz", "--value-hex", "--initial-peers", "/ip4/127.0.0.1/tcp/1/p2p/QmVrH6p1osxWeQTcffq483hdda8Ypx93dEW3NWkurYJJLv"}, code: 2},
		{name: "get bad peer", args: []string{"get", "k", "--initial-peers", "not-a-maddr"}, code: 2},
		{name: "get a key that starts with a dash", args: []string{"get", "-k"}, code: 2},
		{name: "dht bad refresh period", args: []string{"dht", "--refresh-period", "0s"}, code: 2},
		{name: "run bad log level", args: []string{"run", "--log-level", "loud"}, code: 2},
		{name: "status with an argument", args: []string{"status", "extra"}, code: 2},
		{name: "keygen no file", args: []string{"keygen"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			assert.Equal(t, tt.code, cli.ExitCode(prog, err, &errb), "err %v, stderr %s", err, errb.String())
			if tt.code == 0 && !errors.Is(err, flag.ErrHelp) {
				assert.Contains(t, out.String(), "usage: supervisor")
			}
		})
	}
}

func TestRunPrintsTheSummaryAfterTheLastReadyWorker(t *testing.T) {
	hdr := func(i int) ipc.EventHeader {
		return ipc.EventHeader{SlotName: fmt.Sprintf("worker-%d", i+1), SlotIndex: i}
	}
	ready := func(i int) ipc.Event {
		return ipc.EventReady{EventHeader: hdr(i), PID: 100 + i, PeerID: ipc.PeerID{Base58: fmt.Sprintf("Qm%d", i)}, Maddrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/Qm%d", 4000+i, i)}}
	}
	var buf bytes.Buffer
	p := newPrinter(&buf, 3)
	p.adminURL = "http://127.0.0.1:7677"
	p.event(ready(0))
	p.event(ready(2))
	// Worker 1 dies before worker 2 is ready: the swarm is not ready yet.
	p.event(ipc.EventExited{EventHeader: hdr(0), PID: 100, Reason: errors.New("signal: killed")})
	p.event(ipc.EventBackoff{EventHeader: hdr(0), Restarts: 1})
	p.event(ready(1))
	assert.NotContains(t, buf.String(), "workers ready")
	p.event(ready(0))
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "3 workers ready"), out)
	lastReady := strings.LastIndex(out, "  /ip4/127.0.0.1/tcp/4000/p2p/Qm0\n") // worker-1's second ready lines
	summary := strings.Index(out, "3 workers ready")
	assert.Less(t, lastReady, summary, "the summary follows the last worker's ready lines:\n%s", out)
	assert.True(t, strings.HasSuffix(out, "\n3 workers ready. Query them from another terminal:\n"+
		"  supervisor store greeting '\"hello\"' --initial-peers /ip4/127.0.0.1/tcp/4000/p2p/Qm0\n"+
		"  supervisor get greeting --initial-peers /ip4/127.0.0.1/tcp/4002/p2p/Qm2\n"+
		"  supervisor status    (or http://127.0.0.1:7677/status, http://127.0.0.1:7677/metrics)\n"+
		"Ctrl-C stops every worker.\n"), out)
	assert.NotContains(t, out, "restart 1", "backoff before the summary is not printed")

	// Later restarts print their lines, and no second summary.
	p.event(ipc.EventExited{EventHeader: hdr(1), PID: 101, Reason: errors.New("signal: killed")})
	p.event(ipc.EventBackoff{EventHeader: hdr(1), Restarts: 1})
	p.event(ready(1))
	out = buf.String()
	assert.Equal(t, 1, strings.Count(out, "workers ready"), out)
	assert.Contains(t, out, "worker-2: restart 1")
}

// TestStatusMarksALoneWorker: a slot whose worker started alone shows it in the STATE column.
func TestStatusMarksALoneWorker(t *testing.T) {
	body := `{"pid":7,"state_dir":"s","slots":[` +
		`{"name":"worker-1","state":"running","pid":11,"peer_id":"QmA","alone":true},` +
		`{"name":"worker-2","state":"running","pid":12,"peer_id":"QmB"}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	require.NoError(t, runStatus(context.Background(), []string{"--admin-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr))
	lines := strings.Split(stdout.String(), "\n")
	require.GreaterOrEqual(t, len(lines), 4, stdout.String())
	assert.Contains(t, lines[2], "running (alone)")
	assert.NotContains(t, lines[3], "alone")
}
