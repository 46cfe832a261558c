package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

// FuzzStoreValueHex feeds arbitrary text as `store --value-hex KEY -- VALUE`: the command line is
// parsed without a panic, VALUE reaches the hex decoder intact (after "--" nothing is a flag or an
// initial peer, not even "--" or a multiaddr), and the command refuses it with a usage error
// unless it is the hex of exactly one msgpack value. No --initial-peers is given, so an accepted
// value stops at the "needs --initial-peers" check and no worker is started.
func FuzzStoreValueHex(f *testing.F) {
	for _, s := range []string{
		"a568656c6c6f", "2a", "c0", "C3", "93010203", "d440a161", "c1", "0102", "", "zz", "2", "-h", "--",
		"--ttl", "-1", "/ip4/127.0.0.1/tcp/1/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
		"dd7fffffff", "81a161d45001", "ca7fc00001",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		var stdout, stderr bytes.Buffer
		err := runStore(context.Background(), []string{"--value-hex", "k", "--", value}, &stdout, &stderr)
		var usage *cli.UsageError
		if !errors.As(err, &usage) {
			t.Fatalf("VALUE %q: want a usage error, got %v", value, err)
		}
		raw, hexErr := hex.DecodeString(value)
		_, mpErr := msgpack.Unmarshal(raw)
		var want string
		switch {
		case hexErr != nil:
			want = "VALUE is not hex"
		case mpErr != nil:
			want = "VALUE is not one msgpack value"
		default:
			want = "needs --initial-peers"
		}
		if !strings.Contains(usage.Msg, want) {
			t.Fatalf("VALUE %q: got %q, want it to say %q", value, usage.Msg, want)
		}
		if stdout.Len() != 0 {
			t.Fatalf("VALUE %q: printed %q before joining", value, stdout.String())
		}
	})
}

// FuzzStatusBody serves arbitrary bytes as the admin endpoint's /status document to `status` (over
// loopback HTTP, as the command reads it): --json prints the body untouched; otherwise a body that
// is not JSON is an error, and an accepted one prints the header, the table and every slot's
// multiaddrs.
func FuzzStatusBody(f *testing.F) {
	good, err := json.Marshal(adminStatus{PID: 42, StateDir: "state", Time: time.Unix(1, 0).UTC(), Slots: []ipc.SlotStatus{
		{Name: "w0", State: ipc.SlotRunning, PID: 7, PeerID: "QmX", Maddrs: []string{"/ip4/127.0.0.1/tcp/1"}, Restarts: 2},
		{Name: "w1", State: ipc.SlotBackoff},
	}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(good), `{}`, `null`, `[]`, `{"pid":"x"}`, `{"slots":[null,{"maddrs":null}]}`,
		`{"slots":[{"name":"a\tb\nc","maddrs":["m1","m2"]}]}`, `{"pid":1e99}`, `{"slots":{}}`, `not json`, ``,
		`{"pid":1}{"pid":2}`, `{"slots":[{"name":"x","maddrs":["` + strings.Repeat("m", 300) + `"]}]}`,
	} {
		f.Add([]byte(s), false)
	}
	f.Add(good, true)

	var mu sync.Mutex
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		b := body
		mu.Unlock()
		_, _ = w.Write(b)
	}))
	f.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	f.Fuzz(func(t *testing.T, doc []byte, asJSON bool) {
		if len(doc) > 1<<20 {
			return // the command reads at most 1 MiB
		}
		mu.Lock()
		body = doc
		mu.Unlock()
		args := []string{"--admin-addr", addr}
		if asJSON {
			args = append(args, "--json")
		}
		var stdout, stderr bytes.Buffer
		err := runStatus(context.Background(), args, &stdout, &stderr)
		if asJSON {
			if err != nil || !bytes.Equal(stdout.Bytes(), doc) {
				t.Fatalf("--json: err %v, printed %q, want %q", err, stdout.Bytes(), doc)
			}
			return
		}
		if !json.Valid(doc) {
			if err == nil || !strings.Contains(err.Error(), "bad status") {
				t.Fatalf("body %q is not JSON: want a bad status error, got %v (printed %q)", doc, err, stdout.String())
			}
			return
		}
		if err != nil {
			if !strings.Contains(err.Error(), "bad status") {
				t.Fatalf("body %q: %v", doc, err)
			}
			return
		}
		out := stdout.String()
		if !strings.HasPrefix(out, "supervisor pid ") || !strings.Contains(out, "WORKER") {
			t.Fatalf("body %q printed %q", doc, out)
		}
		var st struct {
			Slots []struct {
				Name   string   `json:"name"`
				Maddrs []string `json:"maddrs"`
			} `json:"slots"`
		}
		if err := json.Unmarshal(doc, &st); err != nil {
			t.Fatalf("status accepted %q, which does not decode: %v", doc, err)
		}
		for _, s := range st.Slots {
			for _, m := range s.Maddrs {
				if !strings.Contains(out, s.Name+"  "+m+"\n") {
					t.Fatalf("body %q: slot %q multiaddr %q not printed in %q", doc, s.Name, m, out)
				}
			}
		}
	})
}
