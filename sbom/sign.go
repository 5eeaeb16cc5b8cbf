package sbom

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"
)

// ErrBadSignature is wrapped by every verification failure: a signature
// that does not verify, or signed content that says something else than
// what was asked (another blob, another zip, another predicate).
var ErrBadSignature = errors.New("signature verification failed")

// OfflineTrustedRoot is a sigstore trusted root with nothing in it. The
// cosign CLI insists on a trusted root (--trusted-root) to read a
// protobuf bundle even when the key is given with --key; this one makes it
// trust no transparency log, CA or timestamp authority, only the key.
const OfflineTrustedRoot = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`

// bundleMediaType is what `cosign sign-blob --new-bundle-format` writes.
const bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// Signer signs with a cosign key pair, offline: no Fulcio certificate, no
// Rekor entry. The private key is decrypted once, in LoadSigner. A Signer is
// safe for concurrent use.
type Signer struct {
	sv     signature.SignerVerifier
	pubPEM []byte
	hint   string // base64 SHA-256 of the DER public key, as cosign writes it in bundles
	// previous are public keys modgate signed with before this one
	// (AddPrevious), PEM.
	previous [][]byte
}

// GenerateKeys makes a cosign key pair, as `cosign generate-key-pair` does:
// an ECDSA P-256 key, the private half encrypted with password (scrypt and
// secretbox, PEM "ENCRYPTED SIGSTORE PRIVATE KEY"), the public half a PEM
// "PUBLIC KEY". The cosign CLI reads the private key with COSIGN_PASSWORD.
func GenerateKeys(password []byte) (privPEM, pubPEM []byte, err error) {
	if len(password) == 0 {
		return nil, nil, errors.New("sbom: refusing to write a signing key without a password")
	}
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("sbom: generating cosign key pair: %w", err)
	}
	return kb.PrivateBytes, kb.PublicBytes, nil
}

// LoadSigner decrypts a cosign private key (what GenerateKeys or
// `cosign generate-key-pair` wrote). Decryption costs about a third of a
// second of scrypt: do it once at start-up and keep the Signer.
func LoadSigner(privPEM, password []byte) (*Signer, error) {
	sv, err := cosign.LoadPrivateKey(privPEM, password, nil)
	if err != nil {
		return nil, fmt.Errorf("sbom: loading cosign private key: %w", err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("sbom: cosign private key: %w", err)
	}
	// The cosign CLI verifies blobs with SHA-256 unless told otherwise, and
	// a P-256 key is what generate-key-pair makes; other curves would sign
	// with another hash.
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("sbom: cosign private key is a %T, want ECDSA P-256 (what cosign generate-key-pair makes)", pub)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("sbom: cosign public key: %w", err)
	}
	sum, err := keyDigest(pub)
	if err != nil {
		return nil, fmt.Errorf("sbom: cosign public key: %w", err)
	}
	return &Signer{sv: sv, pubPEM: pubPEM, hint: base64.StdEncoding.EncodeToString(sum[:])}, nil
}

// keyDigest is the SHA-256 of pub's DER (PKIX) encoding.
func keyDigest(pub crypto.PublicKey) ([32]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(der), nil
}

// KeyID names the public key pubPEM (PEM, as cosign.pub) by the SHA-256 of
// its DER encoding: in hex, as modgate's URLs name it, and in base64, as
// the bundles modgate writes hint at the key that signed them.
func KeyID(pubPEM []byte) (hexSum, hint string, err error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return "", "", fmt.Errorf("sbom: public key: %w", err)
	}
	sum, err := keyDigest(pub)
	if err != nil {
		return "", "", fmt.Errorf("sbom: public key: %w", err)
	}
	return hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:]), nil
}

// PublicKeyPEM returns the public key, PEM "PUBLIC KEY", as cosign.pub.
func (s *Signer) PublicKeyPEM() []byte { return bytes.Clone(s.pubPEM) }

// AddPrevious adds the public key (PEM, as cosign.pub) of a key modgate
// signed with before this one: what it signed still verifies
// (PreviousKeys) after the signing key is rotated. Call it before the
// Signer is shared.
func (s *Signer) AddPrevious(pubPEM []byte) error {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return fmt.Errorf("sbom: previous public key: %w", err)
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("sbom: previous public key is a %T, want ECDSA P-256 (what cosign generate-key-pair makes)", pub)
	}
	canonical, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return fmt.Errorf("sbom: previous public key: %w", err)
	}
	if bytes.Equal(canonical, s.pubPEM) {
		return errors.New("sbom: previous public key is the current signing key's")
	}
	for _, p := range s.previous {
		if bytes.Equal(p, canonical) {
			return errors.New("sbom: previous public key given twice")
		}
	}
	s.previous = append(s.previous, canonical)
	return nil
}

// PreviousKeys returns the public keys added with AddPrevious, PEM.
func (s *Signer) PreviousKeys() [][]byte {
	out := make([][]byte, len(s.previous))
	for i, p := range s.previous {
		out[i] = bytes.Clone(p)
	}
	return out
}

// SignBlob signs data as `cosign sign-blob --key` does. sig is the base64
// text cosign writes with --output-signature. bundle is a sigstore bundle
// (v0.3, what `cosign sign-blob --new-bundle-format` writes) with the
// signature, the data's SHA-256 and a hint naming the key, and no
// transparency log entry.
func (s *Signer) SignBlob(data []byte) (sig, bundle []byte, err error) {
	raw, err := s.sv.SignMessage(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("sbom: signing blob: %w", err)
	}
	digest := sha256.Sum256(data)
	b := &protobundle.Bundle{
		MediaType: bundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{
				PublicKey: &protocommon.PublicKeyIdentifier{Hint: s.hint},
			},
		},
		Content: &protobundle.Bundle_MessageSignature{
			MessageSignature: &protocommon.MessageSignature{
				MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
				Signature:     raw,
			},
		},
	}
	bj, err := protojson.Marshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("sbom: encoding bundle: %w", err)
	}
	// protojson varies its whitespace on purpose; store it without any.
	var compact bytes.Buffer
	if err := json.Compact(&compact, bj); err != nil {
		return nil, nil, fmt.Errorf("sbom: encoding bundle: %w", err)
	}
	compact.WriteByte('\n')
	return []byte(base64.StdEncoding.EncodeToString(raw)), compact.Bytes(), nil
}

// VerifyBlob checks a signature made by SignBlob (or `cosign sign-blob
// --key`): sig is the base64 text, pubPEM the signer's public key.
func VerifyBlob(pubPEM, data, sig []byte) error {
	v, err := loadVerifier(pubPEM)
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sig)))
	if err != nil {
		return fmt.Errorf("%w: signature is not base64: %v", ErrBadSignature, err)
	}
	if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}

// VerifyBundle checks a bundle made by SignBlob: that it is about data (its
// message digest) and that its signature verifies with pubPEM.
func VerifyBundle(pubPEM, data, bundle []byte) error {
	var b protobundle.Bundle
	if err := protojson.Unmarshal(bundle, &b); err != nil {
		return fmt.Errorf("%w: reading bundle: %v", ErrBadSignature, err)
	}
	ms := b.GetMessageSignature()
	if ms == nil {
		return fmt.Errorf("%w: bundle has no message signature", ErrBadSignature)
	}
	digest := sha256.Sum256(data)
	if d := ms.GetMessageDigest(); d.GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 || !bytes.Equal(d.GetDigest(), digest[:]) {
		return fmt.Errorf("%w: bundle is about another blob (message digest differs)", ErrBadSignature)
	}
	return VerifyBlob(pubPEM, data, []byte(base64.StdEncoding.EncodeToString(ms.GetSignature())))
}

func loadVerifier(pubPEM []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
	if err != nil {
		return nil, fmt.Errorf("sbom: reading public key: %w", err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sbom: public key: %w", err)
	}
	return v, nil
}
