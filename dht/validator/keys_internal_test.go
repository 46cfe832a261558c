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

func TestParseOwnerKey(t *testing.T) {
	var keys struct {
		Keys []struct {
			OpenSSH string           `json:"public_key_openssh"`
			PKCS1   vectors.HexBytes `json:"private_key_pkcs1_der_hex"`
		} `json:"keys"`
	}
	vectors.Load(t, "rsa_validator.json", &keys)
	good := keys.Keys[0].OpenSSH
	priv, err := ParseRSAPrivateKey(keys.Keys[0].PKCS1)
	require.NoError(t, err)
	n := mpint(priv.N)
	e := mpint(big.NewInt(int64(priv.E)))

	cases := []struct {
		name string
		text string
		ok   bool
	}{
		{name: "hivemind marker key", text: good, ok: true},
		{name: "with comment", text: good + " user@host", ok: true},
		{name: "tab separator", text: "ssh-rsa\t" + good[len("ssh-rsa "):], ok: true},
		{name: "junk inside base64 is skipped", text: "ssh-rsa " + good[8:20] + "!" + good[20:], ok: true},
		{name: "non-minimal mpint", text: "ssh-rsa " + sshBlob([]byte(sshRSA), append([]byte{0}, e...), n), ok: true},
		{name: "no body", text: "ssh-rsa", ok: false},
		{name: "leading space", text: " " + good, ok: false},
		{name: "newline separator", text: "ssh-rsa\n" + good[8:], ok: false},
		{name: "ecdsa", text: "ecdsa-sha2-nistp256 " + good[8:], ok: false},
		{name: "certificate type", text: "ssh-rsa-cert-v01@openssh.com " + good[8:], ok: false},
		{name: "inner type differs", text: "ssh-rsa " + sshBlob([]byte("ssh-dss"), e, n), ok: false},
		{name: "trailing data", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, n, []byte{1}), ok: false},
		{name: "truncated", text: good[:40], ok: false},
		{name: "negative modulus", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, append([]byte{0x80}, n...)), ok: false},
		{name: "even exponent", text: "ssh-rsa " + sshBlob([]byte(sshRSA), []byte{4}, n), ok: false},
		{name: "exponent 1", text: "ssh-rsa " + sshBlob([]byte(sshRSA), []byte{1}, n), ok: false},
		{name: "huge exponent", text: "ssh-rsa " + sshBlob([]byte(sshRSA), []byte{1, 0, 0, 0, 1}, n), ok: false},
		{name: "small modulus", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, n[:64]), ok: false},
		{name: "oversized modulus", text: "ssh-rsa " + sshBlob([]byte(sshRSA), e, append([]byte{0x7f}, make([]byte, 2100)...)), ok: false},
		{name: "invalid base64", text: "ssh-rsa AAAAB", ok: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := parseOwnerKey([]byte(tc.text))
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.True(t, pub.Equal(&priv.PublicKey))
		})
	}
}

// TestMaximumSaltLength shows why the salt length is explicit: a 32-byte-salt signature verifies
// with Go's auto-detection but not with hivemind's maximum salt length.
func TestMaximumSaltLength(t *testing.T) {
	var keys struct {
		Keys []struct {
			PKCS1 vectors.HexBytes `json:"private_key_pkcs1_der_hex"`
		} `json:"keys"`
	}
	vectors.Load(t, "rsa_validator.json", &keys)
	priv, err := ParseRSAPrivateKey(keys.Keys[0].PKCS1)
	require.NoError(t, err)
	require.Equal(t, 222, maxSaltLen(&priv.PublicKey))

	digest := sha256.Sum256([]byte("payload"))
	short, err := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	require.NoError(t, err)
	require.NoError(t, rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, digest[:], short, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}))
	require.Error(t, rsa.VerifyPSS(&priv.PublicKey, crypto.SHA256, digest[:], short, &rsa.PSSOptions{SaltLength: 222}))
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
