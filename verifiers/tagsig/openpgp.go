package tagsig

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Limits on OpenPGP input. A detached signature is a few hundred bytes; a
// public key with many certifications can reach hundreds of kilobytes.
const (
	maxPGPSignature = 64 << 10
	maxPGPKeyData   = 8 << 20
)

const (
	pgpPublicKeyBegin  = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	pgpPrivateKeyBegin = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
)

// AddOpenPGP adds armored OpenPGP public keys (the output of
// `gpg --export --armor`, one or more blocks). Revocation signatures inside a
// key are honoured, and so is a block holding only a key revocation
// certificate for a key added earlier (gpg's openpgp-revocs.d/*.rev with the
// leading ':' removed). Private keys are refused: a trust configuration has
// no use for them, so one is a mistake worth stopping for. A key that is
// already in the keyring is refused too, because two copies of one key, one
// revoked and one not, would let the unrevoked copy win.
func (k *Keyring) AddOpenPGP(armored []byte) error {
	if len(armored) > maxPGPKeyData {
		return fmt.Errorf("openpgp keys: %d bytes exceeds the %d byte limit: %w", len(armored), maxPGPKeyData, ErrMalformed)
	}
	if bytes.Contains(armored, []byte(pgpPrivateKeyBegin)) {
		return fmt.Errorf("openpgp keys: input contains a private key block; add public keys only: %w", ErrMalformed)
	}
	blocks := armorBlocks(armored, pgpPublicKeyBegin)
	if len(blocks) == 0 {
		return fmt.Errorf("openpgp keys: no %q block found: %w", pgpPublicKeyBegin, ErrMalformed)
	}
	// Stage into a copy so that a failing block leaves the keyring unchanged.
	staged := append(openpgp.EntityList(nil), k.pgp...)
	var revocations []*packet.Signature
	for i, blk := range blocks {
		body, err := dearmor(blk, "PGP PUBLIC KEY BLOCK", maxPGPKeyData)
		if err != nil {
			return fmt.Errorf("openpgp keys: block %d: %v: %w", i+1, err, ErrMalformed)
		}
		if revs, ok := revocationOnly(body); ok {
			revocations = append(revocations, revs...)
			continue
		}
		ents, err := openpgp.ReadKeyRing(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("openpgp keys: block %d: %v: %w", i+1, err, ErrMalformed)
		}
		for _, e := range ents {
			fp := pgpFingerprint(e.PrimaryKey)
			if e.PrivateKey != nil {
				return fmt.Errorf("openpgp keys: block %d: key %s includes private key material: %w", i+1, fp, ErrMalformed)
			}
			for _, old := range staged {
				if bytes.Equal(old.PrimaryKey.Fingerprint, e.PrimaryKey.Fingerprint) {
					return fmt.Errorf("openpgp keys: block %d: key %s is already in keyring %q; export it once with all its signatures: %w", i+1, fp, k.name, ErrMalformed)
				}
			}
			staged = append(staged, e)
		}
	}
	for _, rev := range revocations {
		if err := applyRevocation(staged, rev); err != nil {
			return fmt.Errorf("openpgp keys: %v: %w", err, ErrMalformed)
		}
	}
	k.pgp = staged
	return nil
}

// armorBlocks returns the sub-slices of data that start at each line equal
// to begin. openpgp.ReadArmoredKeyRing reads only the first block, so a file
// of concatenated exports would otherwise lose keys silently.
func armorBlocks(data []byte, begin string) [][]byte {
	var starts []int
	for off := 0; off < len(data); {
		line, _, _ := bytes.Cut(data[off:], []byte("\n"))
		if string(bytes.TrimRight(line, "\r \t")) == begin {
			starts = append(starts, off)
		}
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	blocks := make([][]byte, len(starts))
	for i, s := range starts {
		end := len(data)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		blocks[i] = data[s:end]
	}
	return blocks
}

// dearmor decodes one armored block of the given type, reading at most limit
// bytes of body. Reading to the end also checks the armor checksum.
func dearmor(block []byte, typ string, limit int64) ([]byte, error) {
	blk, err := armor.Decode(bytes.NewReader(block))
	if err != nil {
		return nil, fmt.Errorf("bad armor: %v", err)
	}
	if blk.Type != typ {
		return nil, fmt.Errorf("armor type %q, want %q", blk.Type, typ)
	}
	body, err := io.ReadAll(io.LimitReader(blk.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("bad armor: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("armored data exceeds %d bytes", limit)
	}
	return body, nil
}

// revocationOnly reports whether body consists only of key revocation
// signatures (a standalone revocation certificate) and returns them.
func revocationOnly(body []byte) ([]*packet.Signature, bool) {
	var sigs []*packet.Signature
	r := packet.NewReader(bytes.NewReader(body))
	for {
		p, err := r.Next()
		if err == io.EOF {
			return sigs, len(sigs) > 0
		}
		if err != nil {
			return nil, false
		}
		sig, ok := p.(*packet.Signature)
		if !ok || sig.SigType != packet.SigTypeKeyRevocation {
			return nil, false
		}
		sigs = append(sigs, sig)
	}
}

// applyRevocation attaches a standalone key revocation to the key that
// issued it, after checking that the key really made it. It replaces that
// entity in ents with a copy: the original may be in the keyring already,
// which must not change if a later step of AddOpenPGP fails.
func applyRevocation(ents openpgp.EntityList, rev *packet.Signature) error {
	if rev.IssuerKeyId == nil {
		return errors.New("revocation certificate names no issuer")
	}
	for i, e := range ents {
		if e.PrimaryKey.KeyId != *rev.IssuerKeyId {
			continue
		}
		if err := e.PrimaryKey.VerifyRevocationSignature(rev); err != nil {
			return fmt.Errorf("revocation certificate for key %s does not verify: %v", pgpFingerprint(e.PrimaryKey), err)
		}
		c := *e
		c.Revocations = append(slices.Clip(e.Revocations), rev)
		ents[i] = &c
		return nil
	}
	return fmt.Errorf("revocation certificate for key %016X, which is not in the keyring (add the key first)", *rev.IssuerKeyId)
}

func pgpFingerprint(pk *packet.PublicKey) string {
	return strings.ToUpper(hex.EncodeToString(pk.Fingerprint))
}

// verifyOpenPGP checks a detached binary-mode signature over t.Payload, with
// key expiry and revocation evaluated at now. Beyond what gpg checks it
// refuses text-mode signatures (git signs tags in binary mode, and text mode
// would let CR/LF rewriting of the tag pass) and signatures dated in the
// future.
func (k *Keyring) verifyOpenPGP(t *Tag, now time.Time) (*Signer, error) {
	if bytes.HasPrefix(t.Signature, []byte("-----BEGIN PGP MESSAGE-----")) {
		// gpg --verify refuses it too ("not a detached signature").
		return nil, sigErr(ErrUnsupportedFormat, nil, "openpgp: a PGP MESSAGE block is not a detached signature")
	}
	body, err := dearmor(t.Signature, "PGP SIGNATURE", maxPGPSignature)
	if err != nil {
		return nil, sigErr(ErrMalformed, nil, "openpgp: %v", err)
	}
	sig, err := onlySignature(body)
	if err != nil {
		return nil, sigErr(ErrMalformed, nil, "openpgp: %v", err)
	}
	if sig.SigType != packet.SigTypeBinary {
		return nil, sigErr(ErrUnsupportedFormat, nil, "openpgp: signature type 0x%02x; git signs tags in binary mode (0x00)", uint8(sig.SigType))
	}
	if sig.IssuerKeyId == nil {
		return nil, sigErr(ErrMalformed, nil, "openpgp: signature names no issuer key id")
	}
	id := *sig.IssuerKeyId
	var candidates []openpgp.Key
	for _, key := range k.pgp.KeysById(id) {
		// A key id is 64 bits; the issuer fingerprint, when present, settles
		// which key is meant.
		if len(sig.IssuerFingerprint) == 0 || bytes.Equal(sig.IssuerFingerprint, key.PublicKey.Fingerprint) {
			candidates = append(candidates, key)
		}
	}
	if len(candidates) == 0 {
		return nil, sigErr(ErrUnknownSigner, nil, "openpgp key %s is not in keyring %q", issuerName(sig), k.name)
	}
	if sig.CreationTime.After(now) {
		return nil, sigErr(ErrBadSignature, nil, "openpgp key %s: signature made at %s, in the future (now %s)",
			issuerName(sig), sig.CreationTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	usable := k.pgp.KeysByIdUsage(id, packet.KeyFlagSign)
	var lastErr error
	for _, key := range candidates {
		if !containsKey(usable, key) {
			lastErr = sigErr(ErrBadSignature, nil, "openpgp key %s (%s) is not a signing key", pgpFingerprint(key.PublicKey), primaryName(key.Entity))
			continue
		}
		if key.PublicKey.CreationTime.After(sig.CreationTime) {
			// gpg: "public key ... is N seconds newer than the signature".
			lastErr = sigErr(ErrBadSignature, nil, "openpgp key %s was created at %s, after the signature (%s)",
				pgpFingerprint(key.PublicKey), key.PublicKey.CreationTime.UTC().Format(time.RFC3339), sig.CreationTime.UTC().Format(time.RFC3339))
			continue
		}
		// One key at a time, so that we know which key verified.
		err := k.verifyPGP(key, sig, t.Payload, body, now)
		if err == nil {
			s := pgpSigner(key)
			s.validity = newPGPValidity(key, sig)
			return s, nil
		}
		if err := pgpTimeError(key, err, now); err != nil {
			return nil, err
		}
		lastErr = sigErr(ErrBadSignature, err, "%s: signature does not verify", pgpDesc(key))
	}
	return nil, lastErr
}

// pgpDesc names key in messages: its fingerprint and primary identity.
func pgpDesc(key openpgp.Key) string {
	return fmt.Sprintf("openpgp key %s (%s)", pgpFingerprint(key.PublicKey), primaryName(key.Entity))
}

// pgpTimeError is Verify's error for a verification that failed at now
// because a key was revoked or a key or signature expired; nil for any
// other failure.
func pgpTimeError(key openpgp.Key, err error, now time.Time) error {
	at := now.UTC().Format(time.RFC3339)
	switch {
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return sigErr(ErrKeyRevoked, err, "%s is revoked at %s", pgpDesc(key), at)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return sigErr(ErrKeyExpired, err, "%s is expired at %s", pgpDesc(key), at)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return sigErr(ErrKeyExpired, err, "%s: the signature or a binding signature is expired at %s", pgpDesc(key), at)
	}
	return nil
}

// onlySignature insists that the armored body is exactly one signature
// packet. gpg verifies every signature in a block and git then refuses a
// block with more than one, while go-crypto would take the first one whose
// issuer it knows.
func onlySignature(body []byte) (*packet.Signature, error) {
	r := packet.NewReader(bytes.NewReader(body))
	var sig *packet.Signature
	for n := 0; ; n++ {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("signature packet: %v", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("signature block holds a %T packet", p)
		}
		if sig != nil {
			return nil, errors.New("signature block holds more than one signature; git refuses that")
		}
		sig = s
	}
	if sig == nil {
		return nil, errors.New("signature block holds no signature")
	}
	return sig, nil
}

func issuerName(sig *packet.Signature) string {
	if len(sig.IssuerFingerprint) > 0 {
		return strings.ToUpper(hex.EncodeToString(sig.IssuerFingerprint))
	}
	return fmt.Sprintf("%016X", *sig.IssuerKeyId)
}

func primaryName(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return ""
}

func containsKey(keys []openpgp.Key, k openpgp.Key) bool {
	for _, c := range keys {
		if c.PublicKey == k.PublicKey {
			return true
		}
	}
	return false
}

func pgpSigner(key openpgp.Key) *Signer {
	return &Signer{
		Type:               FormatOpenPGP,
		Fingerprint:        pgpFingerprint(key.PublicKey),
		PrimaryFingerprint: pgpFingerprint(key.Entity.PrimaryKey),
		Principal:          primaryName(key.Entity),
	}
}

// singleKey is an openpgp.KeyRing holding one key.
type singleKey struct{ key openpgp.Key }

func (s singleKey) KeysById(id uint64) []openpgp.Key {
	if s.key.PublicKey.KeyId == id {
		return []openpgp.Key{s.key}
	}
	return nil
}

func (s singleKey) KeysByIdUsage(id uint64, usage byte) []openpgp.Key {
	// The caller has already checked usage against the full keyring.
	return s.KeysById(id)
}

func (s singleKey) DecryptionKeys() []openpgp.Key { return nil }
