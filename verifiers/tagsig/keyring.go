package tagsig

import (
	"fmt"
	"sort"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/modgate/modgate/internal/memo"
)

// Signer describes who signed a tag that verified.
type Signer struct {
	Type string `json:"type"` // "openpgp" or "ssh"
	// Fingerprint is, for openpgp, the upper-case hex fingerprint of the key
	// that made the signature (the subkey if a subkey signed); for ssh,
	// "SHA256:..." as ssh-keygen prints it.
	Fingerprint string `json:"fingerprint"`
	// PrimaryFingerprint is, for openpgp, the primary key's fingerprint (equal
	// to Fingerprint if the primary key signed); for ssh, Fingerprint.
	PrimaryFingerprint string `json:"primary_fingerprint"`
	// Principal is, for ssh, the first principal of the allowed_signers entry
	// that matched (git reports the first one find-principals prints); for
	// openpgp, the primary identity "Name <email>".
	Principal string `json:"principal"`
	// KeyName is the name of the Keyring (the signer group) that verified it.
	KeyName string `json:"key_name"`
	// validity is set by Verify (Validity).
	validity Validity
}

// Keyring is one configured signer group: a set of trusted keys with one
// name. Add keys first; Verify may then be called from many goroutines at
// once, but not concurrently with the Add methods.
type Keyring struct {
	name    string
	pgp     openpgp.EntityList
	signers []allowedSigner
	revoked map[string]bool // ssh.PublicKey.Marshal() of revoked ssh keys
	// memo holds the signatures whose cryptography verified (key, payload
	// and signature): only the public-key operation is skipped on a hit;
	// revocation, expiry and allowed_signers entries are checked every
	// time.
	memo memo.Set
}

// NewKeyring returns an empty keyring called name. An empty keyring knows no
// signer: Verify returns ErrUnknownSigner for every signed tag.
func NewKeyring(name string) *Keyring {
	return &Keyring{name: name, revoked: map[string]bool{}}
}

// ExpectSignatures makes the memo of verified signatures hold at least n,
// so that a re-verification of n versions signed by this keyring finds
// them all on its next run.
func (k *Keyring) ExpectSignatures(n int) { k.memo.Grow(n) }

// Name returns the keyring's name.
func (k *Keyring) Name() string { return k.name }

// Verify checks t's signature against the keyring. t must come from Parse,
// whose checks (one signature block, nothing after its END line) Verify
// relies on. now is the verification
// time for OpenPGP key expiry and revocation (as gpg uses the current time);
// ssh validity windows are checked at t.TaggerTime, as git does.
//
// On failure the error wraps exactly one sentinel. ErrUnknownSigner means
// that this keyring does not know the key, and only then is it worth trying
// another keyring; every other error means this keyring knows the key (or the
// tag itself is unusable) and refuses it.
func (k *Keyring) Verify(t *Tag, now time.Time) (*Signer, error) {
	if t == nil {
		return nil, sigErr(ErrMalformed, nil, "nil tag")
	}
	if t.Signature == nil {
		return nil, sigErr(ErrUnsigned, nil, "tag %q has no signature block", t.Name)
	}
	var (
		s   *Signer
		err error
	)
	switch t.Format {
	case FormatOpenPGP:
		s, err = k.verifyOpenPGP(t, now)
	case FormatSSH:
		s, err = k.verifySSH(t)
	case FormatX509:
		return nil, sigErr(ErrUnsupportedFormat, nil, "x509 (gpgsm) signatures are not supported")
	default:
		return nil, sigErr(ErrUnsupportedFormat, nil, "unknown signature format %q", t.Format)
	}
	if err != nil {
		return nil, err
	}
	s.KeyName = k.name
	return s, nil
}

// Error is the type of errors returned by Verify. It unwraps to the sentinel
// that classifies it and, when there is one, the underlying library error.
type Error struct {
	Kind  error // one of the sentinel errors
	Msg   string
	Cause error // may be nil
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return "tag signature: " + e.Msg + ": " + e.Cause.Error()
	}
	return "tag signature: " + e.Msg
}

// Unwrap lets errors.Is find both the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func sigErr(kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Cause: cause}
}

// An Expiry is an OpenPGP signing key of a keyring that expires.
type Expiry struct {
	// Fingerprint is the key's (a subkey's, when a subkey signs).
	Fingerprint string
	// Name is the key's primary identity, "Name <email>".
	Name string
	// Expires is when it expires: the earlier of its own expiry and, for
	// a subkey, its primary key's.
	Expires time.Time
}

// Expiring lists the OpenPGP keys of k that can sign, are not revoked at
// now, and expire before deadline (those expired already included),
// soonest first. Verify judges expiry at the time it is given, so tags
// such a key signed stop verifying when it expires. SSH keys are not
// listed: their validity is judged at the tag's time.
func (k *Keyring) Expiring(now, deadline time.Time) []Expiry {
	var out []Expiry
	add := func(pk *packet.PublicKey, e *openpgp.Entity, at time.Time) {
		if !at.IsZero() && at.Before(deadline) {
			out = append(out, Expiry{Fingerprint: pgpFingerprint(pk), Name: primaryName(e), Expires: at.UTC()})
		}
	}
	for _, e := range k.pgp {
		if e.Revoked(now) {
			continue
		}
		primarySig, _ := e.PrimarySelfSignature()
		primary := keyExpiry(e.PrimaryKey, primarySig)
		if primarySig != nil && (!primarySig.FlagsValid || primarySig.FlagSign) {
			add(e.PrimaryKey, e, primary)
		}
		for _, sub := range e.Subkeys {
			if sub.Sig == nil || !sub.Sig.FlagsValid || !sub.Sig.FlagSign || sub.Revoked(now) {
				continue
			}
			at := keyExpiry(sub.PublicKey, sub.Sig)
			if at.IsZero() || !primary.IsZero() && primary.Before(at) {
				at = primary
			}
			add(sub.PublicKey, e, at)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Expires.Before(out[j].Expires) })
	return out
}

// keyExpiry is when pk expires by its self-signature sig; zero for never.
func keyExpiry(pk *packet.PublicKey, sig *packet.Signature) time.Time {
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}
	}
	return pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
}
