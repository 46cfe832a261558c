package albert

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/ipc"
)

// DefaultHostMaddr is where nodes listen unless told otherwise: loopback, any free port.
const DefaultHostMaddr = "/ip4/127.0.0.1/tcp/0"

// rsaKeyBits is the size of the RSA keys created for signing records (hivemind's).
const rsaKeyBits = 2048

// NodeConfig configures StartNode: one peer's DHT, like albert's DHT(start=True, initial_peers=…,
// record_validators=make_validators(run_id), …). Zero fields take the defaults.
type NodeConfig struct {
	// Name identifies the node's worker in logs. Default "albert".
	Name string
	// RunID names the run whose schemas the node validates. Default DefaultRunID.
	RunID string
	// InitialPeers are multiaddrs ending in /p2p/<peer id>; none for the first peer of a run.
	InitialPeers []string
	// HostMaddrs are the addresses to listen on. Default DefaultHostMaddr.
	HostMaddrs []string
	// AnnounceMaddrs replace the announced addresses.
	AnnounceMaddrs []string
	// IdentityPath is the libp2p identity file (created when missing); empty: an ephemeral identity.
	IdentityPath string
	// KeyFile is the PEM file of the RSA key that signs this peer's records, created (0600) when
	// missing. Empty: a fresh key in a private temporary directory, removed by Stop.
	KeyFile string
	// ClientMode: the node serves no DHT requests (a peer behind a NAT).
	ClientMode bool
	// DHT tunes the node.
	DHT ipc.DHTParams
	// StartTimeout bounds the worker's start, bootstrap included. Default ipc.DefaultStartTimeout.
	StartTimeout time.Duration
	// Logger receives the node's logs and its worker's relayed ones. Default slog.Default().
	Logger *slog.Logger
}

// Validate reports every bad field (errors wrap ErrInvalidConfig or ipc.ErrInvalidConfig).
func (c NodeConfig) Validate() error {
	var errs configErrors
	errs.negative("StartTimeout", c.StartTimeout)
	if c.KeyFile != "" {
		if fi, err := os.Stat(c.KeyFile); err == nil && fi.IsDir() {
			errs.bad("KeyFile", "%q is a directory", c.KeyFile)
		}
	}
	return errors.Join(errs.err(), c.nodeConfig(nil).Validate())
}

// nodeConfig is the worker's configuration with validators (nil before the key file is known).
func (c NodeConfig) nodeConfig(validators []ipc.ValidatorSpec) ipc.NodeConfig {
	hosts := c.HostMaddrs
	if len(hosts) == 0 {
		hosts = []string{DefaultHostMaddr}
	}
	return ipc.NodeConfig{
		IdentityPath:   c.IdentityPath,
		HostMaddrs:     hosts,
		AnnounceMaddrs: c.AnnounceMaddrs,
		InitialPeers:   c.InitialPeers,
		ClientMode:     c.ClientMode,
		DHT:            c.DHT,
		Validators:     validators,
	}
}

// Validators returns the record validators of a run as worker configuration: albert's
// make_validators (SchemaValidator(MetricSchema, prefix=run_id) + RSASignatureValidator) plus the
// ProgressTracker's TrainingProgressSchema, which the worker merges into one schema and one RSA
// validator signing with keyFile.
func Validators(runID, keyFile string) ([]ipc.ValidatorSpec, error) {
	var specs []ipc.ValidatorSpec
	for _, schema := range []validator.SchemaConfig{validator.AlbertMetricsSchema(runID), validator.ProgressSchema(runID)} {
		data, err := json.Marshal(schema)
		if err != nil {
			return nil, fmt.Errorf("albert: schema config: %w", err)
		}
		specs = append(specs, ipc.ValidatorSpec{Schema: &ipc.SchemaValidatorSpec{ConfigJSON: data}})
	}
	specs = append(specs, ipc.ValidatorSpec{RSA: &ipc.RSAValidatorSpec{PrivateKeyFile: keyFile}})
	return specs, nil
}

// LoadOrCreateKey reads the RSA private key in path (PEM or DER, as hivemind writes), or creates a
// 2048-bit one there (PKCS#1 PEM, mode 0600, written atomically) when the file does not exist.
func LoadOrCreateKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return validator.ParseRSAPrivateKey(data)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, err
	}
	pemData := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".albert-key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		return nil, errors.Join(err, tmp.Close())
	}
	if _, err := tmp.Write(pemData); err != nil {
		return nil, errors.Join(err, tmp.Close())
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil { // never replaces a key created meanwhile
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKey(path)
		}
		return nil, err
	}
	return key, nil
}

// Node is one peer's DHT: a running worker (embedded: Get, Store, … through ipc.Client) configured
// with the run's validators, and the owner marker its RSA validator signs for.
type Node struct {
	*ipc.Worker
	marker []byte
	tmpDir string
	logger *slog.Logger
}

// StartNode creates (or loads) the signing key, starts a DHT worker with the run's validators and
// returns once its node is ready (hivemind's DHT(start=True, await_ready=True)). A bootstrap failure
// is errors.Is(err, dht.ErrBootstrapFailed) and leaves nothing behind.
func StartNode(ctx context.Context, cfg NodeConfig) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "albert"
	}
	if cfg.RunID == "" {
		cfg.RunID = DefaultRunID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{logger: cfg.Logger}
	defer func() {
		if err != nil && n.tmpDir != "" {
			err = errors.Join(err, os.RemoveAll(n.tmpDir))
		}
	}()
	keyFile := cfg.KeyFile
	if keyFile == "" {
		if n.tmpDir, err = os.MkdirTemp("", "albert-key-"); err != nil {
			return nil, err
		}
		keyFile = filepath.Join(n.tmpDir, "rsa.pem")
	}
	key, err := LoadOrCreateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("albert: signing key %s: %w", keyFile, err)
	}
	n.marker = validator.OwnerMarkerFor(&key.PublicKey)
	validators, err := Validators(cfg.RunID, keyFile)
	if err != nil {
		return nil, err
	}
	n.Worker, err = ipc.StartWorker(ctx, ipc.WorkerConfig{
		Name:         cfg.Name,
		Node:         cfg.nodeConfig(validators),
		StartTimeout: cfg.StartTimeout,
		Logger:       cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// OwnerMarker returns "[owner:ssh-rsa …]" of the node's signing key: the subkey under which its
// records are signed (a fresh copy).
func (n *Node) OwnerMarker() []byte { return append([]byte{}, n.marker...) }

// Identity returns who this node is in the records it stores.
func (n *Node) Identity() Identity {
	return Identity{PeerID: []byte(n.ID().Raw), OwnerMarker: n.OwnerMarker()}
}

// Stop stops the worker (ipc's stop sequence) and removes a temporary key. ctx can only shorten the
// sequence. Later calls return the first result.
func (n *Node) Stop(ctx context.Context) ipc.StopMethod {
	m := n.Worker.Stop(ctx)
	if n.tmpDir != "" {
		if err := os.RemoveAll(n.tmpDir); err != nil {
			n.logger.Warn("cannot remove the temporary key", "error", err)
		}
	}
	return m
}
