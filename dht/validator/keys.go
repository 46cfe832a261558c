package validator

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Key size limits. hivemind generates 2048-bit keys; OpenSSL (under hivemind's cryptography library)
// refuses to verify with moduli above 16384 bits, and Go refuses to sign or verify below 1024.
const (
	minKeyBits = 1024
	maxKeyBits = 16384
)

// ParseRSAPrivateKey reads an RSA private key in any of the forms hivemind and OpenSSL write: PKCS#1
// DER (hivemind's RSAPrivateKey.to_bytes), PKCS#8 DER, or either of them PEM-encoded ("RSA PRIVATE
// KEY" / "PRIVATE KEY"). Errors wrap ErrInvalidKey. x509.MarshalPKCS1PrivateKey writes hivemind's form.
func ParseRSAPrivateKey(data []byte) (*rsa.PrivateKey, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "RSA PRIVATE KEY", "PRIVATE KEY":
			der = block.Bytes
		default:
			return nil, fmt.Errorf("%w: PEM block %q", ErrInvalidKey, block.Type)
		}
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: neither PKCS#1 nor PKCS#8: %w", ErrInvalidKey, err)
	}
	key, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not an RSA key", ErrInvalidKey, parsed)
	}
	return key, nil
}

// OwnerMarkerFor returns the owner marker of a public key, "[owner:ssh-rsa <base64>]": the key in
// OpenSSH format without a comment, exactly the bytes hivemind searches keys and subkeys for.
func OwnerMarkerFor(pub *rsa.PublicKey) []byte {
	var b bytes.Buffer
	b.WriteString("[owner:")
	b.WriteString(openSSHPublicKey(pub))
	b.WriteString("]")
	return b.Bytes()
}

const sshRSA = "ssh-rsa"

// openSSHPublicKey renders "ssh-rsa <base64 of the wire blob>" (RFC 4253 §6.6).
func openSSHPublicKey(pub *rsa.PublicKey) string {
	var blob []byte
	blob = appendSSHString(blob, []byte(sshRSA))
	blob = appendSSHString(blob, mpint(big.NewInt(int64(pub.E))))
	blob = appendSSHString(blob, mpint(pub.N))
	return sshRSA + " " + base64.StdEncoding.EncodeToString(blob)
}

func appendSSHString(b, s []byte) []byte {
	return append(binary.BigEndian.AppendUint32(b, uint32(len(s))), s...)
}

// mpint is the SSH encoding of a non-negative integer: minimal big-endian bytes, with a zero byte in
// front when the top bit is set (RFC 4251 §5).
func mpint(n *big.Int) []byte {
	b := n.Bytes()
	if len(b) > 0 && b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// parseOwnerKey reads the key of an owner marker the way hivemind does
// (cryptography's load_ssh_public_key, then "must be RSA"): "<type> <base64 blob>[ comment]" where
// the type is ssh-rsa, the blob decodes with Python's lenient base64 and holds exactly
// string("ssh-rsa"), mpint(e), mpint(n), and the numbers make a usable key. Certificate key types
// (ssh-rsa-cert-v01@openssh.com), which hivemind would parse but never writes, are refused. A
// well-formed key of another algorithm gives an error wrapping ErrOwnerKeyNotRSA; every other
// failure (a refused certificate type too) wraps ErrOwnerKeyInvalid.
func parseOwnerKey(text []byte) (*rsa.PublicKey, error) {
	keyType, blob, err := readOpenSSHLine(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOwnerKeyInvalid, err)
	}
	if keyType != sshRSA {
		// cryptography loads the other key types it knows, and hivemind then finds no RSA key; a
		// blob that names another type is "Key type does not match".
		if inner, _, err := readSSHString(blob); err == nil && string(inner) == keyType && isOtherSSHKeyType(keyType) {
			return nil, fmt.Errorf("%w: %s", ErrOwnerKeyNotRSA, keyType)
		}
		return nil, fmt.Errorf("%w: key type %q is not ssh-rsa", ErrOwnerKeyInvalid, keyType)
	}
	pub, err := readRSAKeyBlob(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOwnerKeyInvalid, err)
	}
	return pub, nil
}

// isOtherSSHKeyType reports whether t is a public key type other than RSA that hivemind's
// cryptography library (load_ssh_public_key) loads.
func isOtherSSHKeyType(t string) bool {
	switch t {
	case "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
		return true
	}
	return false
}

// readOpenSSHLine splits "<type> <base64 blob>[ comment]" (cryptography: \A(\S+)[ \t]+(\S+)) and
// decodes the blob with Python's lenient base64.
func readOpenSSHLine(text []byte) (keyType string, blob []byte, err error) {
	typ, rest := splitToken(text)
	if len(typ) == 0 || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
		return "", nil, errors.New("not an OpenSSH public key line")
	}
	rest = bytes.TrimLeft(rest, " \t")
	body, _ := splitToken(rest)
	if len(body) == 0 {
		return "", nil, errors.New("not an OpenSSH public key line")
	}
	blob, err = pyBase64Decode(body)
	if err != nil {
		return "", nil, fmt.Errorf("key body: %w", err)
	}
	return string(typ), blob, nil
}

// readRSAKeyBlob reads an ssh-rsa key blob: string("ssh-rsa"), mpint(e), mpint(n), nothing after,
// and numbers that make a usable key.
func readRSAKeyBlob(blob []byte) (*rsa.PublicKey, error) {
	inner, blob, err := readSSHString(blob)
	if err != nil {
		return nil, err
	}
	if string(inner) != sshRSA {
		return nil, fmt.Errorf("inner key type %q is not ssh-rsa", inner)
	}
	e, blob, err := readMpint(blob)
	if err != nil {
		return nil, err
	}
	n, blob, err := readMpint(blob)
	if err != nil {
		return nil, err
	}
	if len(blob) != 0 {
		return nil, errors.New("trailing data after the key")
	}
	// cryptography's RSAPublicNumbers checks, then the limits of OpenSSL and Go.
	switch {
	case n.Cmp(big.NewInt(3)) < 0:
		return nil, errors.New("modulus below 3")
	case e.Cmp(big.NewInt(3)) < 0 || e.Cmp(n) >= 0 || e.Bit(0) == 0:
		return nil, errors.New("public exponent must be odd and in [3, n)")
	case !e.IsInt64() || e.Int64() > 1<<31-1:
		return nil, errors.New("public exponent too large")
	case n.BitLen() < minKeyBits || n.BitLen() > maxKeyBits:
		return nil, fmt.Errorf("%d-bit modulus outside [%d, %d]", n.BitLen(), minKeyBits, maxKeyBits)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// isPySpace reports whether c is in Python's bytes \s class.
func isPySpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// splitToken returns the leading run of non-space bytes and what follows it.
func splitToken(b []byte) (token, rest []byte) {
	i := 0
	for i < len(b) && !isPySpace(b[i]) {
		i++
	}
	return b[:i], b[i:]
}

func readSSHString(b []byte) (s, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated key blob")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, errors.New("truncated key blob")
	}
	return b[4 : 4+n], b[4+n:], nil
}

func readMpint(b []byte) (*big.Int, []byte, error) {
	s, rest, err := readSSHString(b)
	if err != nil {
		return nil, nil, err
	}
	if len(s) > 0 && s[0] > 0x7f {
		return nil, nil, errors.New("negative mpint")
	}
	return new(big.Int).SetBytes(s), rest, nil
}

// pyBase64Decode is Python's base64.b64decode without validate (binascii.a2b_base64, non-strict):
// bytes outside the alphabet are skipped, decoding stops at the padding that completes a quantum,
// leftover bits are dropped, and only a dangling single character or missing padding is an error.
// hivemind decodes signatures and key bodies this way, so a Go peer accepts what it accepts.
func pyBase64Decode(s []byte) ([]byte, error) {
	out := make([]byte, 0, len(s)*3/4)
	var quadPos, pads int
	var left byte
	for _, c := range s {
		if c == '=' {
			if quadPos >= 2 {
				pads++
				if quadPos+pads >= 4 {
					return out, nil
				}
			}
			continue
		}
		v := b64Value(c)
		if v < 0 {
			continue
		}
		pads = 0
		switch quadPos {
		case 0:
			left, quadPos = byte(v), 1
		case 1:
			out = append(out, left<<2|byte(v)>>4)
			left, quadPos = byte(v)&0x0f, 2
		case 2:
			out = append(out, left<<4|byte(v)>>2)
			left, quadPos = byte(v)&0x03, 3
		case 3:
			out = append(out, left<<6|byte(v))
			left, quadPos = 0, 0
		}
	}
	switch quadPos {
	case 0:
		return out, nil
	case 1:
		return nil, errors.New("invalid base64: one character more than a multiple of 4")
	}
	return nil, errors.New("invalid base64: incorrect padding")
}

func b64Value(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}
