package tagsig

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// memo remembers the signatures whose public-key operation succeeded, by a
// SHA-256 over the key, the signed payload and the signature: the same bytes
// verify the same way, so re-verifying an admitted tag every night costs a
// hash instead of an ed25519 or RSA verification. Only the cryptography is
// remembered; what depends on the time or on the keyring as it is now
// (revocation, expiry, allowed_signers entries and their validity) is
// checked on every call. It lives in memory only: a memo anyone could
// write would be a way around the signature.
type memo struct {
	mu sync.Mutex
	m  map[[32]byte]struct{}
}

// maxMemo bounds a keyring's memo (about 100 bytes an entry); when full it
// starts again.
const maxMemo = 1 << 17

func memoKey(kind string, parts ...[]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(kind))
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (m *memo) has(k [32]byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.m[k]
	return ok
}

func (m *memo) add(k [32]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxMemo {
		m.m = make(map[[32]byte]struct{})
	}
	m.m[k] = struct{}{}
}

// verifyPGP is openpgp.VerifyDetachedSignature with key alone, remembering
// the cryptography: on a memo hit only pgpDetails runs.
func (k *Keyring) verifyPGP(key openpgp.Key, sig *packet.Signature, payload, body []byte, now time.Time) error {
	mk := memoKey("openpgp", key.PublicKey.Fingerprint, payload, body)
	if k.memo.has(mk) {
		return pgpDetails(&key, sig, now)
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	if _, _, err := openpgp.VerifyDetachedSignature(singleKey{key}, bytes.NewReader(payload), bytes.NewReader(body), cfg); err != nil {
		return err
	}
	k.memo.add(mk)
	return nil
}

// pgpDetails is what go-crypto checks once a message signature's
// cryptography verified (checkMessageSignatureDetails in openpgp/read.go,
// v1.5.2), at now: no unknown critical notation; the key, its primary key
// and primary identity not revoked; neither key expired; none of the
// signatures involved expired. TestMemoAgrees holds it to the library's
// answers.
func pgpDetails(key *openpgp.Key, sig *packet.Signature, now time.Time) error {
	primarySig, primaryIdentity := key.Entity.PrimarySelfSignature()
	bySubkey := key.PublicKey != key.Entity.PrimaryKey
	sigs := []*packet.Signature{sig, primarySig}
	if bySubkey {
		if key.SelfSignature == nil {
			return pgperrors.StructuralError("signing subkey without a binding signature")
		}
		sigs = append(sigs, key.SelfSignature, key.SelfSignature.EmbeddedSignature)
	}
	for _, s := range sigs {
		if s == nil {
			return pgperrors.StructuralError("key without the self-signatures it needs")
		}
		for _, n := range s.Notations {
			if n.IsCritical {
				return pgperrors.SignatureError("unknown critical notation: " + n.Name)
			}
		}
	}
	if key.Entity.Revoked(now) || bySubkey && key.Revoked(now) || primaryIdentity != nil && primaryIdentity.Revoked(now) {
		return pgperrors.ErrKeyRevoked
	}
	if key.Entity.PrimaryKey.KeyExpired(primarySig, now) || bySubkey && key.PublicKey.KeyExpired(key.SelfSignature, now) {
		return pgperrors.ErrKeyExpired
	}
	for _, s := range sigs {
		if s.SigExpired(now) {
			return pgperrors.ErrSignatureExpired
		}
	}
	return nil
}
