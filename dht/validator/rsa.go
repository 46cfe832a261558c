package validator

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Marker patterns of hivemind's RSASignatureValidator (non-greedy; `.` stops at a newline). Compiled
// once and only read: a stateless table.
var (
	ownerMarkerRE     = regexp.MustCompile(`\[owner:(.+?)\]`)
	signatureMarkerRE = regexp.MustCompile(`\[signature:(.+?)\]`)
)

// signaturePrefix starts every signature marker; a value without it has nothing to strip.
var signaturePrefix = []byte("[signature:")

// RSAPriority is RSASignature's priority: it validates and strips before the schema (priority 0)
// sees the value, and signs after it.
const RSAPriority = 10

// RSASignature is hivemind's RSASignatureValidator. A record is protected when its key or subkey
// contains an owner marker "[owner:ssh-rsa …]"; a protected record is valid only if every marker in
// key and subkey names the same key and the value carries exactly one "[signature:<base64>]"
// made by that key over msgpack(Tuple{key, subkey, value without signatures, expiration}), with
// RSA-PSS, SHA-256, MGF1-SHA-256 and the maximum salt length (222 bytes for RSA-2048; an
// auto-detected salt length would accept signatures hivemind rejects). Unprotected records are
// always valid.
//
// It signs (SignValue) only records that contain its own owner marker, OwnerMarker(). Differences
// from hivemind: an owner key that does not parse as an RSA key makes the record invalid where
// hivemind raises (vectors quirk validate_raises_on_bad_owner_key; Check's error then wraps
// ErrOwnerKeyNotRSA or ErrOwnerKeyInvalid); owner keys outside 1024..16384 bits and OpenSSH
// certificate keys are invalid. Like hivemind, StripValue removes every
// "[signature:…]" substring, even one that is part of a user's value (Q10).
//
// An RSASignature is immutable and safe for concurrent use.
type RSASignature struct {
	key     *rsa.PrivateKey
	marker  []byte
	saltLen int
	logger  *slog.Logger
}

// NewRSASignature returns a validator that signs with key (hivemind keys: RSA-2048, e = 65537; any
// size from 1024 to 16384 bits is accepted). logger receives warnings (nil means slog.Default()).
// Errors wrap ErrInvalidKey.
func NewRSASignature(key *rsa.PrivateKey, logger *slog.Logger) (*RSASignature, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: nil key", ErrInvalidKey)
	}
	if bits := key.N.BitLen(); bits < minKeyBits || bits > maxKeyBits {
		return nil, fmt.Errorf("%w: %d-bit key outside [%d, %d]", ErrInvalidKey, bits, minKeyBits, maxKeyBits)
	}
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &RSASignature{
		key:     key,
		marker:  OwnerMarkerFor(&key.PublicKey),
		saltLen: maxSaltLen(&key.PublicKey),
		logger:  logger,
	}, nil
}

// maxSaltLen is PSS's maximum salt length for SHA-256: emLen − hLen − 2 with emLen = ⌈(bits−1)/8⌉.
func maxSaltLen(pub *rsa.PublicKey) int {
	return (pub.N.BitLen()-1+7)/8 - sha256.Size - 2
}

// OwnerMarker returns this validator's owner marker, "[owner:<OpenSSH public key>]" (a fresh copy).
// Put it in a subkey (as albert's trainers do) or a key to protect a record.
func (v *RSASignature) OwnerMarker() []byte { return bytes.Clone(v.marker) }

// PublicKey returns the public half of the signing key.
func (v *RSASignature) PublicKey() *rsa.PublicKey { return &v.key.PublicKey }

// Priority implements dht.RecordValidator.
func (v *RSASignature) Priority() int { return RSAPriority }

// SigningPayload returns the bytes that are signed and verified for a record: the msgpack of the
// tuple (key, subkey, value, expiration), value without signatures.
func SigningPayload(key, subkey, value []byte, expiration float64) []byte {
	// A Tuple of byte strings and a float always encodes.
	payload, _ := msgpack.Marshal(msgpack.Tuple{key, subkey, value, expiration})
	return payload
}

// SignValue implements dht.RecordValidator: when OwnerMarker() occurs in r.Key or r.Subkey it returns
// r.Value followed by "[signature:<base64>]", else r.Value unchanged. Signing fails only if the
// system's randomness does; the value is then returned unsigned (and will not validate) and the
// failure is logged.
func (v *RSASignature) SignValue(r dht.Record) []byte {
	if !bytes.Contains(r.Key, v.marker) && !bytes.Contains(r.Subkey, v.marker) {
		return r.Value
	}
	digest := sha256.Sum256(SigningPayload(r.Key, r.Subkey, r.Value, r.Expiration))
	sig, err := rsa.SignPSS(rand.Reader, v.key, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: v.saltLen})
	if err != nil {
		v.logger.Error("validator: cannot sign record", "error", err)
		return r.Value
	}
	out := make([]byte, 0, len(r.Value)+len(signaturePrefix)+base64.StdEncoding.EncodedLen(len(sig))+1)
	out = append(out, r.Value...)
	out = append(out, signaturePrefix...)
	out = base64.StdEncoding.AppendEncode(out, sig)
	return append(out, ']')
}

// StripValue implements dht.RecordValidator: r.Value without any "[signature:…]" substring.
func (v *RSASignature) StripValue(r dht.Record) []byte { return StripSignatures(r.Value) }

// StripSignatures returns value without any "[signature:…]" substring (StripValue's rule, which needs
// no key). The result aliases value when there is nothing to strip.
func StripSignatures(value []byte) []byte {
	if !bytes.Contains(value, signaturePrefix) {
		return value
	}
	return signatureMarkerRE.ReplaceAll(value, nil)
}

// Validate implements dht.RecordValidator with hivemind's rules (see the type's documentation); the
// reason of an invalid record is the text of Check's error.
func (v *RSASignature) Validate(r dht.Record) (bool, string) {
	if err := v.Check(r); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// Check returns nil if r is valid by hivemind's rules (see the type's documentation), else why it is
// not. When the owner key named by r's marker is at fault — the records hivemind's validate raises
// on — the error wraps ErrOwnerKeyNotRSA or ErrOwnerKeyInvalid. The verdict does not depend on v's
// key: it is CheckSignature's.
func (v *RSASignature) Check(r dht.Record) error { return CheckSignature(r) }

// IsProtected reports whether r carries an owner marker "[owner:…]" in its key or subkey, i.e.
// whether an RSASignature checks its signature (an unprotected record is always valid).
func IsProtected(r dht.Record) bool { return len(owners(r)) > 0 }

func owners(r dht.Record) [][]byte {
	var out [][]byte
	for _, part := range [][]byte{r.Key, r.Subkey} {
		for _, m := range ownerMarkerRE.FindAllSubmatch(part, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// CheckSignature is the verdict of an RSASignature on r (see Check) without one: verifying needs
// only the public key that r's owner marker names, so readers that never sign (a command-line
// client, a monitor) need no private key.
func CheckSignature(r dht.Record) error {
	owners := owners(r)
	if len(owners) == 0 {
		return nil
	}
	for _, o := range owners[1:] {
		if !bytes.Equal(o, owners[0]) {
			return errors.New("key and subkey name different owners")
		}
	}
	pub, err := parseOwnerKey(owners[0])
	if err != nil {
		// hivemind raises here; the record is simply invalid (vectors: validate_raises_on_bad_owner_key).
		return fmt.Errorf("owner key is not a usable RSA key: %w", err)
	}
	sigs := signatureMarkerRE.FindAllSubmatch(r.Value, -1)
	if len(sigs) != 1 {
		return fmt.Errorf("protected record has %d signatures, want exactly 1", len(sigs))
	}
	sig, err := pyBase64Decode(sigs[0][1])
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	saltLen := maxSaltLen(pub)
	if saltLen < 0 {
		// readRSAKeyBlob refuses keys this small; kept so that the contract holds if it stops to.
		return fmt.Errorf("%w: a %d-bit key is too small for PSS with SHA-256", ErrOwnerKeyInvalid, pub.N.BitLen())
	}
	digest := sha256.Sum256(SigningPayload(r.Key, r.Subkey, StripSignatures(r.Value), r.Expiration))
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: saltLen}); err != nil {
		return fmt.Errorf("signature does not verify: %w", err)
	}
	return nil
}

// MergeWith implements dht.RecordValidator like hivemind: another RSASignature is absorbed (true) and
// only the first one keeps signing. hivemind does this silently (Q8); when the keys differ — so the
// other validator's records will not be signed — a warning is logged.
func (v *RSASignature) MergeWith(other dht.RecordValidator) bool {
	o, ok := other.(*RSASignature)
	if !ok {
		return false
	}
	if !v.key.PublicKey.Equal(&o.key.PublicKey) {
		v.logger.Warn("validator: a second RSA signature validator with another key is ignored; "+
			"records protected by its owner marker will not be signed",
			"kept_owner", string(v.marker), "ignored_owner", string(o.marker))
	}
	return true
}
