package p2p

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mr-tron/base58/base58"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/test/vectors"
)

type identityFile struct {
	KeyFiles []struct {
		Name       string           `json:"name"`
		File       vectors.HexBytes `json:"file_hex"`
		FileLen    int              `json:"file_len"`
		KeyType    string           `json:"key_type"`
		PeerIDB58  string           `json:"p2pd_peer_id_b58"`
		PeerIDHex  vectors.HexBytes `json:"p2pd_peer_id_hex"`
		KeygenLine *string          `json:"p2p_keygen_stdout"`
		RSA        *struct {
			ModulusBits    int              `json:"modulus_bits"`
			PublicExponent int              `json:"public_exponent"`
			PublicKeyPB    vectors.HexBytes `json:"public_key_protobuf_hex"`
			PublicKeySHA   vectors.HexBytes `json:"public_key_protobuf_sha256_hex"`
		} `json:"rsa"`
	} `json:"key_files"`
	Base58 []struct {
		Name         string           `json:"name"`
		Bytes        vectors.HexBytes `json:"bytes_hex"`
		Base58       string           `json:"base58"`
		HivemindOnly bool             `json:"hivemind_only"`
	} `json:"base58"`
	Base58Invalid []struct {
		Base58       string        `json:"base58"`
		Error        vectors.Error `json:"error"`
		HivemindOnly bool          `json:"hivemind_only"`
	} `json:"base58_invalid"`
}

// TestIdentityVectors: hivemind's and p2p-keygen's identity files give the peer IDs a real p2pd reports,
// and re-encode byte for byte.
func TestIdentityVectors(t *testing.T) {
	var f identityFile
	vectors.Load(t, "identity.json", &f)
	require.NotEmpty(t, f.KeyFiles)
	for _, tc := range f.KeyFiles {
		t.Run(tc.Name, func(t *testing.T) {
			require.Len(t, tc.File, tc.FileLen)
			path := filepath.Join(t.TempDir(), "identity.key")
			require.NoError(t, os.WriteFile(path, tc.File, 0o400))
			key, err := LoadIdentity(path)
			require.NoError(t, err)
			id, err := IdentityPeerID(key)
			require.NoError(t, err)
			assert.Equal(t, tc.PeerIDB58, id.String())
			assert.Equal(t, []byte(tc.PeerIDHex), PeerIDBytes(id))
			again, err := MarshalIdentity(key)
			require.NoError(t, err)
			assert.Equal(t, []byte(tc.File), again, "re-encoded identity file")
			if tc.RSA != nil {
				assert.Equal(t, cryptopb.KeyType_RSA, key.Type())
				pub, err := crypto.MarshalPublicKey(key.GetPublic())
				require.NoError(t, err)
				assert.Equal(t, []byte(tc.RSA.PublicKeyPB), pub)
				sum := sha256.Sum256(pub)
				assert.Equal(t, []byte(tc.RSA.PublicKeySHA), sum[:])
			}
			if tc.KeygenLine != nil {
				assert.Equal(t, "Peer ID: "+id.String(), *tc.KeygenLine)
			}
		})
	}
}

// TestBase58Vectors: peer IDs and base58 strings as go-libp2p's codec reads them (hivemind-only cases
// are those go-libp2p's codec does not reproduce).
func TestBase58Vectors(t *testing.T) {
	var f identityFile
	vectors.Load(t, "identity.json", &f)
	for _, tc := range f.Base58 {
		t.Run(tc.Name, func(t *testing.T) {
			if tc.HivemindOnly {
				t.Skip("hivemind_only: go-libp2p's base58 codec differs here by design")
			}
			assert.Equal(t, tc.Base58, base58.Encode(tc.Bytes))
			back, err := base58.Decode(tc.Base58)
			require.NoError(t, err)
			assert.Equal(t, []byte(tc.Bytes), back)
			if id, err := PeerIDFromBytes(tc.Bytes); err == nil { // a real peer ID
				assert.Equal(t, tc.Base58, id.String())
				parsed, err := ParsePeerID(tc.Base58)
				require.NoError(t, err)
				assert.Equal(t, id, parsed)
			}
		})
	}
	for _, tc := range f.Base58Invalid {
		t.Run("invalid "+tc.Base58, func(t *testing.T) {
			if tc.HivemindOnly {
				t.Skip("hivemind_only")
			}
			require.Equal(t, "invalid_base58", tc.Error.Kind)
			_, err := base58.Decode(tc.Base58)
			assert.Error(t, err)
			_, err = ParsePeerID(tc.Base58)
			assert.Error(t, err)
		})
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "id.key")

	key, created, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	require.True(t, created)
	assert.Equal(t, cryptopb.KeyType_RSA, key.Type(), "hivemind creates RSA-2048")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o400), st.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x08, 0x00, 0x12}, data[:3], "hivemind's layout: key_type RSA, then data")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	again, created, err := LoadOrCreateIdentity(path)
	require.NoError(t, err)
	assert.False(t, created)
	assert.True(t, key.Equals(again), "same file, same identity")
	id1, _ := peer.IDFromPrivateKey(key)
	id2, _ := peer.IDFromPrivateKey(again)
	assert.Equal(t, id1, id2)
}

func TestGenerateIdentity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keyType KeyType
		want    cryptopb.KeyType
		prefix  string
	}{
		{"rsa", KeyTypeRSA, cryptopb.KeyType_RSA, "Qm"},
		{"ed25519", KeyTypeEd25519, cryptopb.KeyType_Ed25519, "12D3KooW"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.key")
			id, err := GenerateIdentity(path, tc.keyType)
			require.NoError(t, err)
			assert.Contains(t, id.String(), tc.prefix)
			key, err := LoadIdentity(path)
			require.NoError(t, err)
			assert.Equal(t, tc.want, key.Type())
			loaded, _ := peer.IDFromPrivateKey(key)
			assert.Equal(t, id, loaded)
			_, err = GenerateIdentity(path, tc.keyType)
			assert.ErrorIs(t, err, fs.ErrExist, "never overwrites")
		})
	}
	_, err := GenerateIdentity(filepath.Join(t.TempDir(), "x"), "dsa")
	assert.ErrorIs(t, err, ErrIdentity)
}

// TestUnusableIdentity: files that cannot be an identity. CI runs as root, so permission bits prove
// nothing: the file is made unusable by its content or by a directory in its place.
func TestUnusableIdentity(t *testing.T) {
	valid, err := os.ReadFile(mustGenerate(t))
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"directory in its place", func(t *testing.T, path string) { require.NoError(t, os.Mkdir(path, 0o700)) }},
		{"empty", func(t *testing.T, path string) { require.NoError(t, os.WriteFile(path, nil, 0o600)) }},
		{"truncated", func(t *testing.T, path string) { require.NoError(t, os.WriteFile(path, valid[:len(valid)/2], 0o600)) }},
		{"garbage", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n"), 0o600))
		}},
		{"unknown key type", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, []byte{0x08, 0x63, 0x12, 0x01, 0x00}, 0o600))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.key")
			tc.setup(t, path)
			_, _, err := LoadOrCreateIdentity(path)
			require.ErrorIs(t, err, ErrIdentity)
			assert.Contains(t, err.Error(), path, "the error names the file")
			_, err = New(testContext(t), Config{IdentityPath: path, Logger: testLogger()})
			assert.ErrorIs(t, err, ErrIdentity)
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "dir", "id.key")
		_, _, err := LoadOrCreateIdentity(path)
		require.ErrorIs(t, err, ErrIdentity)
		assert.Contains(t, err.Error(), "does not exist")
		assert.Contains(t, err.Error(), filepath.Dir(path))
	})
}

func mustGenerate(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "valid.key")
	_, err := GenerateIdentity(path, KeyTypeRSA)
	require.NoError(t, err)
	return path
}
