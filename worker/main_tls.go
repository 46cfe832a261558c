package worker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

// maxTLSMaterial bounds what a worker reads from its stdin for ipcpb.EnvTLS (a few PEM blocks).
const maxTLSMaterial = 64 << 10

// serverTLS returns the TLS configuration the launcher hands this worker when env (ipcpb.EnvTLS)
// says so: the worker's certificate and key, then the authority's certificate, PEM, read from
// stdin. The worker then requires every client to present a certificate of that authority. It
// returns nil when env is empty (go-plugin's own AutoMTLS applies when its client certificate is in
// the environment, else no TLS).
func serverTLS(env string, stdin io.Reader) (*tls.Config, error) {
	switch env {
	case "":
		return nil, nil
	case ipcpb.EnvTLSStdin:
	default:
		return nil, fmt.Errorf("%w: %s=%q: want %q", ErrInvalidConfig, ipcpb.EnvTLS, env, ipcpb.EnvTLSStdin)
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxTLSMaterial+1))
	if err != nil {
		return nil, fmt.Errorf("%w: TLS material on stdin: %w", ErrInvalidConfig, err)
	}
	if len(data) > maxTLSMaterial {
		return nil, fmt.Errorf("%w: TLS material on stdin: over %d bytes", ErrInvalidConfig, maxTLSMaterial)
	}
	var blocks []*pem.Block
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) != 3 || blocks[0].Type != "CERTIFICATE" || blocks[1].Type != "PRIVATE KEY" || blocks[2].Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: TLS material on stdin: want a certificate, a private key and the authority's certificate", ErrInvalidConfig)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(blocks[0]), pem.EncodeToMemory(blocks[1]))
	if err != nil {
		return nil, fmt.Errorf("%w: TLS material on stdin: %w", ErrInvalidConfig, err)
	}
	ca, err := x509.ParseCertificate(blocks[2].Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: TLS material on stdin: authority: %w", ErrInvalidConfig, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
		// X25519 alone, as the launcher offers (see ipc's workerCurves): a post-quantum hybrid
		// would double the handshake's cost for traffic that never leaves a unix socket.
		CurvePreferences: []tls.CurveID{tls.X25519},
	}, nil
}
