package tagsig

import (
	"bytes"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/modgate/modgate/internal/memo"
)

// verifyPGP is openpgp.VerifyDetachedSignature with key alone, remembering
// the cryptography: on a memo hit only pgpDetails runs.
func (k *Keyring) verifyPGP(key openpgp.Key, sig *packet.Signature, payload, body []byte, now time.Time) error {
	mk := memo.Key([]byte("openpgp"), key.PublicKey.Fingerprint, payload, body)
	if k.memo.Has(mk) {
		return pgpDetails(&key, sig, now)
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	if _, _, err := openpgp.VerifyDetachedSignature(singleKey{key}, bytes.NewReader(payload), bytes.NewReader(body), cfg); err != nil {
		return err
	}
	k.memo.Add(mk)
	return nil
}

// pgpDetails is what go-crypto checks once a message signature's
// cryptography verified (checkMessageSignatureDetails in openpgp/read.go,
// v1.5.2), at now: no unknown critical notation; the key, its primary key
// and primary identity not revoked; neither key expired; none of the
// signatures involved expired. TestMemoAgrees holds it to the library's
// answers.
func pgpDetails(key *openpgp.Key, sig *packet.Signature, now time.Time) error {
	critical := ""
	for _, n := range sig.Notations {
		if n.IsCritical {
			critical = n.Name
			break
		}
	}
	var lifetime uint32
	if sig.SigLifetimeSecs != nil {
		lifetime = *sig.SigLifetimeSecs
	}
	return pgpDetailsOf(key, critical, sig.CreationTime, lifetime, now)
}

// pgpDetailsOf is pgpDetails of a signature known by what it reads of it:
// the name of its first critical notation ("" for none), its creation time
// and its lifetime in seconds (0 for none).
func pgpDetailsOf(key *openpgp.Key, critical string, created time.Time, lifetime uint32, now time.Time) error {
	primarySig, primaryIdentity := key.Entity.PrimarySelfSignature()
	bySubkey := key.PublicKey != key.Entity.PrimaryKey
	sigs := []*packet.Signature{primarySig}
	if bySubkey {
		if key.SelfSignature == nil {
			return pgperrors.StructuralError("signing subkey without a binding signature")
		}
		sigs = append(sigs, key.SelfSignature, key.SelfSignature.EmbeddedSignature)
	}
	if critical != "" {
		return pgperrors.SignatureError("unknown critical notation: " + critical)
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
	if sigExpired(created, lifetime, now) {
		return pgperrors.ErrSignatureExpired
	}
	for _, s := range sigs {
		if s.SigExpired(now) {
			return pgperrors.ErrSignatureExpired
		}
	}
	return nil
}

// sigExpired is packet.Signature.SigExpired of a signature made at created
// with a lifetime of so many seconds (0: none).
func sigExpired(created time.Time, lifetime uint32, now time.Time) bool {
	if created.Unix() > now.Unix() {
		return true
	}
	if lifetime == 0 {
		return false
	}
	return now.Unix() > created.Add(time.Duration(lifetime)*time.Second).Unix()
}
