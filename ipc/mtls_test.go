package ipc

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// workerConfigFrom builds the worker's side from the material a launcher hands it, as a worker
// does (worker's serverTLS): its certificate and key, then the authority's certificate.
func workerConfigFrom(t *testing.T, material []byte) *tls.Config {
	t.Helper()
	var blocks []*pem.Block
	for rest := material; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	require.Len(t, blocks, 3)
	require.Equal(t, []string{"CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"}, []string{blocks[0].Type, blocks[1].Type, blocks[2].Type})
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(blocks[0]), pem.EncodeToMemory(blocks[1]))
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(blocks[2].Bytes)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: pool, MinVersion: tls.VersionTLS13}
}

// handshake runs a TLS handshake between client and server over a loopback connection, then a
// one-byte exchange (in TLS 1.3 a refused client certificate shows only then), and returns each
// side's error.
func handshake(t *testing.T, client, server *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		s := tls.Server(conn, server)
		if err = s.Handshake(); err == nil {
			_, err = s.Read(make([]byte, 1))
		}
		done <- err
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	c := tls.Client(conn, client)
	if clientErr = c.Handshake(); clientErr == nil {
		_, clientErr = c.Write([]byte{1})
	}
	_ = conn.Close()
	return clientErr, <-done
}

// TestLauncherTLS: a launcher and its workers accept each other, and only each other: a worker
// refuses another launcher's client, a launcher refuses another launcher's worker.
func TestLauncherTLS(t *testing.T) {
	ours, err := newLauncherTLS()
	require.NoError(t, err)
	theirs, err := newLauncherTLS()
	require.NoError(t, err)
	material := func(l *launcherTLS) *tls.Config {
		m, err := l.workerMaterial()
		require.NoError(t, err)
		return workerConfigFrom(t, m)
	}
	// A client that trusts our workers but holds another launcher's certificate.
	foreign := theirs.clientConfig()
	foreign.RootCAs = ours.pool
	tests := []struct {
		name           string
		client, server *tls.Config
		clientOK       bool // checked only when the server accepts (a refused client may still finish its side)
		serverOK       bool
	}{
		{name: "our launcher, our worker", client: ours.clientConfig(), server: material(ours), clientOK: true, serverOK: true},
		{name: "another launcher's worker", client: ours.clientConfig(), server: material(theirs)},
		{name: "another launcher's client", client: foreign, server: material(ours)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cerr, serr := handshake(t, tc.client, tc.server)
			assert.Equal(t, tc.serverOK, serr == nil, "server: %v", serr)
			if tc.serverOK || tc.clientOK {
				assert.Equal(t, tc.clientOK, cerr == nil, "client: %v", cerr)
			}
		})
	}
}
