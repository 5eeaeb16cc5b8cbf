package tagsig

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/hiddeco/sshsig"
	"github.com/modgate/modgate/internal/memo"
	"golang.org/x/crypto/ssh"
)

// maxSSHSignature bounds the armored ssh signature; an RSA-16384 signature
// is under 5 KiB armored.
const maxSSHSignature = 64 << 10

// gitNamespace is the SSHSIG namespace git signs and verifies with.
const gitNamespace = "git"

// verifySSH checks an SSHSIG signature over t.Payload the way git does with
// ssh-keygen -Y find-principals / -Y verify -n git: the signing key must be
// in allowed_signers and not revoked, the signature's namespace must be
// "git", and some entry for the key must allow the "git" namespace and be
// valid at the tagger time (git passes the tagger time as -Overify-time).
//
// Signatures made with ssh certificates are refused with
// ErrUnsupportedFormat (see AddAllowedSigners). RSA signatures must use
// rsa-sha2-256/512, as ssh-keygen requires.
func (k *Keyring) verifySSH(t *Tag) (*Signer, error) {
	s, err := parseSSHSignature(t.Signature)
	if err != nil {
		return nil, sigErr(ErrMalformed, nil, "ssh: %v", err)
	}
	if _, ok := s.PublicKey.(*ssh.Certificate); ok {
		return nil, sigErr(ErrUnsupportedFormat, nil, "ssh: signature made with an ssh certificate; certificates are not supported")
	}
	fp := ssh.FingerprintSHA256(s.PublicKey)
	kb := string(s.PublicKey.Marshal())
	if k.revoked[kb] {
		return nil, sigErr(ErrKeyRevoked, nil, "ssh key %s is revoked in keyring %q", fp, k.name)
	}
	var entries []*allowedSigner
	for i := range k.signers {
		if k.signers[i].keyBytes == kb {
			entries = append(entries, &k.signers[i])
		}
	}
	if len(entries) == 0 {
		return nil, sigErr(ErrUnknownSigner, nil, "ssh key %s is not in the allowed signers of keyring %q", fp, k.name)
	}
	if s.Namespace != gitNamespace {
		return nil, sigErr(ErrNamespace, nil, "ssh key %s signed for namespace %q, not %q", fp, s.Namespace, gitNamespace)
	}
	// sshsig v0.2.0 already refuses ssh-rsa while parsing; this keeps the
	// rule if a later version stops doing so.
	if s.PublicKey.Type() == ssh.KeyAlgoRSA && s.Signature.Format != ssh.KeyAlgoRSASHA256 && s.Signature.Format != ssh.KeyAlgoRSASHA512 {
		return nil, sigErr(ErrBadSignature, nil, "ssh key %s: RSA signature uses %q; ssh-keygen accepts only rsa-sha2-256/512", fp, s.Signature.Format)
	}
	// The signature block holds the key, namespace, hash and signature:
	// with the payload, all the cryptography depends on.
	if mk := memo.Key([]byte("ssh"), t.Payload, t.Signature); !k.memo.Has(mk) {
		if err := sshsig.Verify(bytes.NewReader(t.Payload), s, s.PublicKey, s.HashAlgorithm, gitNamespace); err != nil {
			return nil, sigErr(ErrBadSignature, err, "ssh key %s: signature does not verify", fp)
		}
		k.memo.Add(mk)
	}

	// Any entry for the key that allows the namespace at the tagger time
	// admits the tag; otherwise report why the first entry did not.
	var firstErr error
	for _, e := range entries {
		err := e.check(fp, t.TaggerTime)
		if err == nil {
			return &Signer{
				Type:               FormatSSH,
				Fingerprint:        fp,
				PrimaryFingerprint: fp,
				Principal:          e.principals[0],
				validity:           Validity{ssh: true},
			}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// check applies an entry's namespaces and validity options.
func (e *allowedSigner) check(fp string, at time.Time) error {
	if e.hasNS && !matchPatternList(gitNamespace, e.namespaces) {
		return sigErr(ErrNamespace, nil, "ssh key %s: allowed_signers line %d allows namespaces %q, not %q",
			fp, e.line, strings.Join(e.namespaces, ","), gitNamespace)
	}
	at = at.Truncate(time.Second)
	if !e.validAfter.IsZero() && at.Before(e.validAfter) {
		return sigErr(ErrNotValidAtTime, nil, "ssh key %s is outside valid-after %s (allowed_signers line %d) at tagger time %s",
			fp, e.afterText, e.line, at.UTC().Format(time.RFC3339))
	}
	if !e.validBefore.IsZero() && at.After(e.validBefore) {
		return sigErr(ErrNotValidAtTime, nil, "ssh key %s is outside valid-before %s (allowed_signers line %d) at tagger time %s",
			fp, e.beforeText, e.line, at.UTC().Format(time.RFC3339))
	}
	return nil
}

// parseSSHSignature decodes the armored SSHSIG block. It is stricter than
// sshsig.Unarmor: PEM headers and trailing text are refused, as ssh-keygen's
// own de-armoring would choke on the former and ignore the latter.
func parseSSHSignature(armored []byte) (*sshsig.Signature, error) {
	if len(armored) > maxSSHSignature {
		return nil, fmt.Errorf("signature block is %d bytes, limit %d", len(armored), maxSSHSignature)
	}
	p, rest := pem.Decode(armored)
	switch {
	case p == nil:
		return nil, fmt.Errorf("signature block is not valid PEM")
	case p.Type != sshsig.PEMType:
		return nil, fmt.Errorf("PEM type %q, want %q", p.Type, sshsig.PEMType)
	case len(p.Headers) > 0:
		return nil, fmt.Errorf("PEM headers are not allowed in an ssh signature")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, fmt.Errorf("%d bytes after the signature block", len(rest))
	}
	s, err := sshsig.ParseSignature(p.Bytes)
	if err != nil {
		return nil, err
	}
	if s.PublicKey == nil || s.Signature == nil {
		return nil, fmt.Errorf("signature lacks a key or signature blob")
	}
	if err := s.HashAlgorithm.Available(); err != nil {
		return nil, err
	}
	return s, nil
}
