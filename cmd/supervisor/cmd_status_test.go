package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatusShowsReachabilityAndRelays: the REACHABILITY, RELAYS, CIRCUITS and CONNS columns, and
// a worker's /p2p-circuit addresses after its multiaddrs.
func TestStatusShowsReachabilityAndRelays(t *testing.T) {
	body := `{"pid":7,"state_dir":"s","slots":[` +
		`{"name":"worker-1","state":"running","pid":11,"peer_id":"QmA","maddrs":["/ip4/10.1.0.10/tcp/4001/p2p/QmA"],` +
		`"nat":{"reachability":"private","relay_addrs":["/ip4/11.0.0.10/tcp/4001/p2p/QmR/p2p-circuit"],"reservations":["QmR"],` +
		`"circuits_open":0,"direct_conns":1,"relayed_conns":2}},` +
		`{"name":"worker-2","state":"running","pid":12,"peer_id":"QmB","nat":{"reachability":"public","reachability_forced":true,"circuits_open":3}},` +
		`{"name":"worker-3","state":"starting","pid":13}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	require.NoError(t, runStatus(context.Background(), []string{"--admin-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr))
	out := stdout.String()
	lines := strings.Split(out, "\n")
	require.GreaterOrEqual(t, len(lines), 7, out)
	for _, col := range []string{"CONNS", "REACHABILITY", "RELAYS", "CIRCUITS"} {
		assert.Contains(t, lines[1], col)
	}
	assert.Regexp(t, `1 direct, 2 relayed\s+private\s+1\s+0\s`, lines[2])
	assert.Regexp(t, `public \(forced\)\s+0\s+3\s`, lines[3])
	assert.Regexp(t, `worker-3\s+starting.*\s-\s`, lines[4], "no figures yet")
	assert.Contains(t, out, "worker-1  /ip4/11.0.0.10/tcp/4001/p2p/QmR/p2p-circuit/p2p/QmA (through a relay)\n")
}
