package tagsig

import (
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
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
