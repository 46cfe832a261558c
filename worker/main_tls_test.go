package worker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// testCA is an authority like a launcher's: it signs a worker's and a client's certificate.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{key: key, cert: cert, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and PKCS#8 key signed by the authority.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: []string{"hivemind-worker"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

func (ca *testCA) client(t *testing.T, trusted *testCA) *tls.Config {
	t.Helper()
	certPEM, keyPEM := ca.issue(t, x509.ExtKeyUsageClientAuth)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(trusted.cert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "hivemind-worker", MinVersion: tls.VersionTLS13}
}

// TestServerTLS: the material on stdin is used as given, and anything else is refused with a
// clear error before the worker serves.
func TestServerTLS(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM := ca.issue(t, x509.ExtKeyUsageServerAuth)
	good := bytes.Join([][]byte{certPEM, keyPEM, ca.pem}, nil)
	tests := []struct {
		name    string
		env     string
		stdin   []byte
		wantErr string // "" for success
		noTLS   bool
	}{
		{name: "no TLS asked for", env: "", stdin: good, noTLS: true},
		{name: "the launcher's material", env: ipcpb.EnvTLSStdin, stdin: good},
		{name: "unknown way", env: "fd", stdin: good, wantErr: `want "stdin"`},
		{name: "nothing on stdin", env: ipcpb.EnvTLSStdin, wantErr: "want a certificate, a private key"},
		{name: "missing the authority", env: ipcpb.EnvTLSStdin, stdin: bytes.Join([][]byte{certPEM, keyPEM}, nil), wantErr: "want a certificate, a private key"},
		{name: "blocks out of order", env: ipcpb.EnvTLSStdin, stdin: bytes.Join([][]byte{keyPEM, certPEM, ca.pem}, nil), wantErr: "want a certificate, a private key"},
		{name: "too much", env: ipcpb.EnvTLSStdin, stdin: append(bytes.Repeat([]byte{'x'}, maxTLSMaterial), good...), wantErr: "over"},
		{name: "key of another certificate", env: ipcpb.EnvTLSStdin, stdin: bytes.Join([][]byte{ca.pem, keyPEM, ca.pem}, nil), wantErr: "TLS material"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := serverTLS(tc.env, bytes.NewReader(tc.stdin))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrInvalidConfig), "%v wraps ErrInvalidConfig", err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.noTLS {
				assert.Nil(t, cfg)
				return
			}
			require.NotNil(t, cfg)
			assert.NoError(t, exchange(t, ca.client(t, ca), cfg), "a client of the authority")
			other := newTestCA(t)
			assert.Error(t, exchange(t, other.client(t, ca), cfg), "a client of another authority")
		})
	}
}

// exchange makes a TLS connection from client to server over loopback and one byte each way.
func exchange(t *testing.T, client, server *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		s := tls.Server(conn, server)
		b := make([]byte, 1)
		if _, err := s.Read(b); err == nil {
			_, _ = s.Write(b)
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{7}); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("server closed the connection: %w", err)
	}
	return err
}
