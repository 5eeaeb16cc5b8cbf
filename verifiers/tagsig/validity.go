package tagsig

import (
	"errors"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// A Validity is what a signature that Verify accepted still depends on when
// the tag and the keyring stay the same: the time. For OpenPGP, Verify
// judges the key's revocation and expiry, its primary key's and identity's,
// and the expiry of every signature involved at the time it is given (as
// gpg judges them at the current time), so a tag that verified today may
// not verify next month. For SSH, validity is judged at the tagger time,
// which is part of the tag: it does not change.
//
// It lets a caller that remembers a verification (re-verification, by the
// tag's and keyring's content) ask again at another time without parsing
// or verifying anything: At gives Verify's verdict at that time for the
// same tag and the same keyring. The zero Validity is no verification.
type Validity struct {
	pgp *pgpValidity // an OpenPGP signature's
	ssh bool         // an SSH signature's
}

// pgpValidity is what verifyOpenPGP judges at its time once the
// cryptography verified: the key (in the keyring that verified it, which
// is never changed after its keys are added) and the signature's creation
// time and lifetime, and its issuer for messages. Its critical notations
// were checked then, and do not depend on the time. (Not the signature
// packet: a memo keeps one Validity per version, and a packet is 664
// bytes.)
type pgpValidity struct {
	key      openpgp.Key
	created  time.Time
	lifetime uint32
	issuer   string
}

// errNoVerification is the error of the zero Validity.
var errNoVerification = errors.New("no verified signature to judge")

// newPGPValidity keeps of sig what the checks at a time read.
func newPGPValidity(key openpgp.Key, sig *packet.Signature) Validity {
	v := &pgpValidity{key: key, created: sig.CreationTime, issuer: issuerName(sig)}
	if sig.SigLifetimeSecs != nil {
		v.lifetime = *sig.SigLifetimeSecs
	}
	return Validity{pgp: v}
}

// Validity returns what the verification that returned s depends on in
// time; the zero Validity for a Signer that Verify did not return.
func (s *Signer) Validity() Validity { return s.validity }

// At returns nil if Verify, given the same tag and the same keyring, would
// accept the signature at now, and otherwise the error Verify would return.
func (v Validity) At(now time.Time) error {
	switch {
	case v.ssh:
		return nil
	case v.pgp == nil:
		return sigErr(ErrMalformed, errNoVerification, "no verification")
	}
	p := v.pgp
	if p.created.After(now) {
		return sigErr(ErrBadSignature, nil, "openpgp key %s: signature made at %s, in the future (now %s)",
			p.issuer, p.created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	// The same checks Verify runs on a signature whose cryptography its memo
	// remembers.
	if err := pgpDetailsOf(&p.key, "", p.created, p.lifetime, now); err != nil {
		if terr := pgpTimeError(p.key, err, now); terr != nil {
			return terr
		}
		return sigErr(ErrBadSignature, err, "%s: signature does not verify", pgpDesc(p.key))
	}
	return nil
}
