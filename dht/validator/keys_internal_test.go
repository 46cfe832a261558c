package validator

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/test/vectors"
)

// TestPyBase64Decode pins Python's base64.b64decode (non-strict binascii) behaviour; the cases were
// checked against CPython 3.11, and the decoder agrees with it on thousands of random inputs.
func TestPyBase64Decode(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // hex; ignored when err
		err      bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "padded", in: "YQ==", want: "61"},
		{name: "three bytes", in: "YWJj", want: "616263"},
		{name: "junk is skipped", in: "YW Jj\n_!", want: "616263"},
		{name: "stops at completing padding", in: "YQ==YWJj", want: "61"},
		{name: "leading padding ignored", in: "=YQ==", want: "61"},
		{name: "hivemind test value", in: "INVALID_BYTES", want: "20d5402c80c1613112"},
		{name: "missing padding", in: "YQ", err: true},
		{name: "half padding", in: "YQ=", err: true},
		{name: "dangling character", in: "Y", err: true},
		{name: "five characters", in: "YWJjZ", err: true},
		{name: "leftover bits dropped", in: "YR==", want: "61"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pyBase64Decode([]byte(tc.in))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, bytesHex(got))
		})
	}
}

func bytesHex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func sshBlob(parts ...[]byte) string {
	var blob []byte
	for _, p := range parts {
		blob = appendSSHString(blob, p)
	}
	return base64.StdEncoding.EncodeToString(blob)
}

// vectorKeys returns the private keys of rsa_validator.json (hivemind's PKCS#1 DER), by label.
func vectorKeys(t *testing.T) map[string]*rsa.PrivateKey {
	t.Helper()
	type keyEntry struct {
		PKCS1   vectors.HexBytes `json:"private_key_pkcs1_der_hex"`
		OpenSSH string           `json:"public_key_openssh"`
	}
	keys := map[string]*rsa.PrivateKey{}
	for _, c := range vectors.Cases[keyEntry](t, "rsa_validator.json", "keys") {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
		priv, err := ParseRSAPrivateKey(c.Data.PKCS1)
		if err != nil {
			t.Fatalf("key %s: %v", c.Name, err)
		}
		if got := openSSHPublicKey(&priv.PublicKey); got != c.Data.OpenSSH {
			t.Fatalf("key %s: OpenSSH form %q, want %q", c.Name, got, c.Data.OpenSSH)
		}
		keys[c.Name] = priv
	}
	return keys
}

// TestParseOwnerKey parses variants of every key of the vectors as an owner marker's key text.
func TestParseOwnerKey(t *testing.T) {
	for name, priv := range vectorKeys(t) {
		t.Run(name, func(t *testing.T) { testParseOwnerKey(t, priv) })
	}
}

func testParseOwnerKey(t *testing.T, priv *rsa.PrivateKey) {
	good := openSSHPublicKey(&priv.PublicKey)
	n := mpint(priv.N)
	e := mpint(big.NewInt(int64(priv.E)))
	point := append([]byte{4}, make([]byte, 64)...) // an uncompressed P-256 point's layout

	cases := []struct {
		name string
		text string
		want error // nil: parses as the key
	}{
		{name: "hivemind marker key", text: good},
		{name: "with comment", text: good + " user@host"},
		{name: "tab separator", text: "ssh-rsa\t" + good[len("ssh-rsa "):]},
		{name: "junk inside base64 is skipped", text: "ssh-rsa " + good[8:20] + "!" + good[20:]},
		{name: "non-minimal mpint", text: "ssh-rsa " + sshBlob([]byte(sshRSA), append([]byte{0}, e...), n)},
		{name: "no body", text: "ssh-rsa", want: ErrOwnerKeyInvalid},
		{name: "leading space", text: " " + good, want: ErrOwnerKeyInvalid},
		{name: "newline separator", text: "ssh-rsa\n" + good[8:], want: ErrOwnerKeyInvalid},
		{name: "ecdsa key", text: "ecdsa-sha2-nistp256 " + sshBlob([]byte("ecdsa-sha2-nistp256"), []byte("nistp256"), point), want: ErrOwnerKeyNotRSA},
		{name: "ed25519 key", text: "ssh-ed25519 " + sshBlob([]byte("ssh-ed25519"), make([]byte, 32)), want: ErrOwnerKeyNotRSA},
		{name: "ecdsa type with an rsa blob", text: "ecdsa-sha2-nistp256 " + good[8:], want: ErrOwnerKeyInvalid},
		{name: "unknown key type", text: "ssh-foo " + sshBlob([]byte("ssh-foo")), want: ErrOwnerKeyInvalid},
		{name: "certificate type", text: "ssh-rsa-cert-v01@openssh.com " + good[8:], want: ErrOwnerKeyInvalid},
		{name: "inner type differs", text: "ssh-rsa " + sshBlob([]byte("ssh-dss"), e, n), want: ErrOwnerKeyInvalid},
		{name: "trailing data", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, n, []byte{1}), want: ErrOwnerKeyInvalid},
		{name: "truncated", text: good[:40], want: ErrOwnerKeyInvalid},
		{name: "negative modulus", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, append([]byte{0x80}, n...)), want: ErrOwnerKeyInvalid},
		{name: "even exponent", text: "ssh-rsa " + sshBlob([]byte(sshRSA), []byte{4}, n), want: ErrOwnerKeyInvalid},
		{name: "exponent 1", text: "ssh-rsa " + sshBlob([]byte(sshRSA), []byte{1}, n), want: ErrOwnerKeyInvalid},
		{name: "huge exponent", text: "ssh-rsa " + sshBlob([]byte(sshRSA), []byte{1, 0, 0, 0, 1}, n), want: ErrOwnerKeyInvalid},
		{name: "small modulus", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, n[:64]), want: ErrOwnerKeyInvalid},
		{name: "oversized modulus", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, append([]byte{0x7f}, make([]byte, 2100)...)), want: ErrOwnerKeyInvalid},
		{name: "invalid base64", text: "ssh-rsa AAAAB", want: ErrOwnerKeyInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := parseOwnerKey([]byte(tc.text))
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.True(t, pub.Equal(&priv.PublicKey))
		})
	}
}

// TestMaximumSaltLength shows why the salt length is explicit: a 32-byte-salt signature verifies
// with Go's auto-detection but not with hivemind's maximum salt length (222 bytes for RSA-2048).
func TestMaximumSaltLength(t *testing.T) {
	require.Equal(t, 222, maxSaltLen(&rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 2047), E: 65537}))
	for name, priv := range vectorKeys(t) {
		t.Run(name, func(t *testing.T) {
			// emLen − hLen − 2, with emLen the bytes of a (bits − 1)-bit number.
			require.Equal(t, (priv.N.BitLen()+6)/8-sha256.Size-2, maxSaltLen(&priv.PublicKey))
			digest := sha256.Sum256([]byte("payload"))
			short, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			require.NoError(t, err)
			require.NoError(t, rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, digest[:], short, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}))
			require.Error(t, rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, digest[:], short, &rsa.PSSOptions{SaltLength: maxSaltLen(&priv.PublicKey)}))
		})
	}
}

func TestOpenSSHRendering(t *testing.T) {
	// The blob starts with string("ssh-rsa"), then e = 65537 as a 3-byte mpint.
	pub := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 2047), E: 65537}
	text := openSSHPublicKey(pub)
	blob, err := base64.StdEncoding.DecodeString(text[len("ssh-rsa "):])
	require.NoError(t, err)
	require.Equal(t, uint32(7), binary.BigEndian.Uint32(blob))
	require.Equal(t, "ssh-rsa", string(blob[4:11]))
	require.Equal(t, []byte{0, 0, 0, 3, 1, 0, 1}, blob[11:18])
	require.Equal(t, []byte{0, 0, 1, 1, 0, 0x80}, blob[18:24], "top bit set: a zero byte in front")
}
