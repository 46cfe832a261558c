package ipc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// launcherTLS is the mutual TLS of an ExecLauncher's connections to its workers: a certificate
// authority made once per launcher (an ECDSA P-256 key that never leaves this process), the
// launcher's client certificate signed by it, and for each worker a fresh server key and
// certificate signed by it, handed to the worker on its stdin (ipcpb.EnvTLS). Each side accepts only
// a peer certificate of this authority: the worker only this launcher, the launcher only its
// workers.
//
// It replaces go-plugin's AutoMTLS, which generates a P-521 key and a self-signed certificate on
// both sides for every launch, and whose handshake verifies P-521 signatures: about 15 ms of a
// worker's CPU at start (the P-521 base-point table is computed in every new process) and a few ms
// of the launcher's. Here a worker generates nothing, and a launch costs the launcher one P-256
// key and one signature.
type launcherTLS struct {
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	caPEM  []byte
	pool   *x509.CertPool
	client tls.Certificate
}

// workerServerName is the name in every worker certificate, which the launcher checks.
const workerServerName = "hivemind-worker"

// certValidity is how long the certificates are valid: a worker's connection may be re-established
// at any time in its life (as go-plugin's AutoMTLS certificates, 30 years).
const certValidity = 30 * 365 * 24 * time.Hour

func newLauncherTLS() (*launcherTLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := certTemplate("hivemind-go worker launcher CA")
	if err != nil {
		return nil, err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	t := &launcherTLS{caKey: caKey, caCert: caCert, pool: x509.NewCertPool(),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	t.pool.AddCert(caCert)
	certPEM, keyPEM, err := t.issue("hivemind-go worker launcher", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	if t.client, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, err
	}
	return t, nil
}

func certTemplate(cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"hivemind-go"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
	}, nil
}

// issue makes a P-256 key and a certificate for it signed by the authority, both PEM.
func (t *launcherTLS) issue(cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := certTemplate(cn)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	tmpl.DNSNames = []string{workerServerName}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, t.caCert, &key.PublicKey, t.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// workerMaterial is what one worker receives on its stdin (ipcpb.EnvTLS): its certificate, its
// key, then the authority's certificate, PEM.
func (t *launcherTLS) workerMaterial() ([]byte, error) {
	certPEM, keyPEM, err := t.issue(workerServerName, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, fmt.Errorf("worker certificate: %w", err)
	}
	return bytes.Join([][]byte{certPEM, keyPEM, t.caPEM}, nil), nil
}

// clientConfig is the launcher's side of one worker connection. Both sides offer X25519 alone
// (workerCurves).
func (t *launcherTLS) clientConfig() *tls.Config {
	return &tls.Config{
		Certificates:     []tls.Certificate{t.client},
		RootCAs:          t.pool,
		ServerName:       workerServerName,
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: workerCurves(),
	}
}

// workerCurves are the key exchanges of a launcher–worker connection: X25519 alone. Go's default
// puts the hybrid X25519MLKEM768 first, which more than doubles the cost of a handshake (1.3 ms
// instead of 0.57 ms of CPU for both sides on a small machine) to protect, against a future
// quantum computer, traffic that never leaves a unix socket of this machine.
func workerCurves() []tls.CurveID { return []tls.CurveID{tls.X25519} }
