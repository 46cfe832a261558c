package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// KeyType names the kind of key GenerateIdentity writes.
type KeyType string

// The identity key types.
const (
	// KeyTypeRSA is a 2048-bit RSA key (e = 65537), what hivemind's P2P.generate_identity writes and
	// the only kind hivemind's PeerID.from_identity can read.
	KeyTypeRSA KeyType = "rsa"
	// KeyTypeEd25519 is what p2p-keygen -t ed25519 writes and what go-libp2p generates by default.
	KeyTypeEd25519 KeyType = "ed25519"
)

// identityFileMode is the mode hivemind writes identity files with.
const identityFileMode = 0o400

// rsaIdentityBits is the size of the RSA keys hivemind generates.
const rsaIdentityBits = 2048

// ParseIdentity decodes the contents of an identity file: a libp2p crypto.pb.PrivateKey protobuf, as
// hivemind writes it (RSA, PKCS#1 DER) and p2p-keygen writes it (RSA or Ed25519). Errors wrap ErrIdentity.
func ParseIdentity(data []byte) (crypto.PrivKey, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty key data", ErrIdentity)
	}
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	return key, nil
}

// MarshalIdentity encodes key in the identity file format (crypto.MarshalPrivateKey).
func MarshalIdentity(key crypto.PrivKey) ([]byte, error) {
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: marshal key: %w", ErrIdentity, err)
	}
	return data, nil
}

// LoadIdentity reads and parses the identity file at path. A missing file is an error wrapping both
// ErrIdentity and fs.ErrNotExist; so is a directory in its place, a truncated or garbage file (each
// error names the file).
func LoadIdentity(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: read identity file %q: %w", ErrIdentity, path, err)
	}
	key, err := ParseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("identity file %q: %w", path, err)
	}
	return key, nil
}

// LoadOrCreateIdentity loads the identity file at path, or, when there is no file there, creates one
// with a new RSA-2048 key in hivemind's format and mode 0400 (hivemind's behaviour for identity_path).
// created reports which happened. A missing directory is an error naming it.
func LoadOrCreateIdentity(path string) (key crypto.PrivKey, created bool, err error) {
	key, err = LoadIdentity(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, err = newKey(KeyTypeRSA)
	if err != nil {
		return nil, false, err
	}
	if err := writeIdentity(path, key); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process created it first: use that one
			key, err = LoadIdentity(path)
			return key, false, err
		}
		return nil, false, err
	}
	return key, true, nil
}

// GenerateIdentity writes a new identity file of the given type at path (mode 0400, hivemind's layout)
// and returns its peer ID. It never overwrites: an existing file is an error wrapping fs.ErrExist.
func GenerateIdentity(path string, kt KeyType) (peer.ID, error) {
	key, err := newKey(kt)
	if err != nil {
		return "", err
	}
	if err := writeIdentity(path, key); err != nil {
		return "", err
	}
	return IdentityPeerID(key)
}

// IdentityPeerID returns the peer ID of an identity key: the multihash of its public key ("Qm…" for
// RSA, "12D3KooW…" for Ed25519), as p2pd reports it.
func IdentityPeerID(key crypto.PrivKey) (PeerID, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", fmt.Errorf("%w: peer id: %w", ErrIdentity, err)
	}
	return id, nil
}

func newKey(kt KeyType) (crypto.PrivKey, error) {
	var (
		key crypto.PrivKey
		err error
	)
	switch kt {
	case KeyTypeRSA:
		key, _, err = crypto.GenerateRSAKeyPair(rsaIdentityBits, rand.Reader)
	case KeyTypeEd25519:
		key, _, err = crypto.GenerateEd25519Key(rand.Reader)
	default:
		return nil, fmt.Errorf("%w: unknown key type %q (want %q or %q)", ErrIdentity, kt, KeyTypeRSA, KeyTypeEd25519)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: generate %s key: %w", ErrIdentity, kt, err)
	}
	return key, nil
}

// writeIdentity writes key to path atomically: a temporary file in the same directory is written and
// synced, then hard-linked to path (which fails if path exists), so a crash never leaves a partial
// identity file behind and an existing file is never replaced.
func writeIdentity(path string, key crypto.PrivKey) error {
	data, err := MarshalIdentity(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%w: the directory %q of identity file %q does not exist: %w", ErrIdentity, dir, path, err)
	} else if !st.IsDir() {
		return fmt.Errorf("%w: %q (directory of identity file %q) is not a directory", ErrIdentity, dir, path)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%w: write identity file %q: %w", ErrIdentity, path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(tmpName, identityFileMode)); err != nil {
		return fmt.Errorf("%w: write identity file %q: %w", ErrIdentity, path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		return fmt.Errorf("%w: create identity file %q: %w", ErrIdentity, path, err)
	}
	return nil
}
