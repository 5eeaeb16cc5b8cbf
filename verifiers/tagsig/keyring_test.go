package tagsig

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/modgate/modgate/internal/pgptest"
)

// These tests run without git, gpg or ssh-keygen; the agreement test checks
// the same behaviour against the real tools.

var testObject = strings.Repeat("1", 40)

func signedPGPTag(t testing.TB, e *openpgp.Entity, at time.Time, text bool) *Tag {
	t.Helper()
	p := tagPayload(testObject, "v1.0.0", "Rel Eng <releng@example.com>", at, "release\n")
	tag, err := Parse(append(p, pgpSign(t, e, p, at, text)...))
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func TestOpenPGPVerdicts(t *testing.T) {
	now := time.Now()
	good := newPGPEntity(t, "Rel Eng", "releng@example.com", now.Add(-time.Hour), 0)
	expired := newPGPEntity(t, "Old", "old@example.com", now.Add(-48*time.Hour), 3600)
	revoked := newPGPEntity(t, "Gone", "gone@example.com", now.Add(-time.Hour), 0)
	stranger := newPGPEntity(t, "Stranger", "stranger@example.com", now.Add(-time.Hour), 0)

	// Sign with the revoked key before revoking it.
	revokedTag := signedPGPTag(t, revoked, now.Add(-30*time.Minute), false)
	if err := revoked.RevokeKey(packet.KeySuperseded, "retired", pgpConfig(now.Add(-10*time.Minute), 0)); err != nil {
		t.Fatal(err)
	}

	ring := NewKeyring("release")
	for _, e := range []*openpgp.Entity{good, expired, revoked} {
		if err := ring.AddOpenPGP(pgptest.Public(t, e)); err != nil {
			t.Fatal(err)
		}
	}

	goodTag := signedPGPTag(t, good, now.Add(-time.Minute), false)
	tampered := *goodTag
	tampered.Payload = bytes.Replace(goodTag.Payload, []byte("release"), []byte("relEase"), 1)

	p := tagPayload(testObject, "v1", "A <a@b>", now, "x\n")
	twoSigs := append(append([]byte(nil), p...), twoSignatureBlock(t, p, now.Add(-time.Minute), stranger, good)...)
	twoSigTag, err := Parse(twoSigs)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		tag  *Tag
		now  time.Time
		want error
	}{
		{"good", goodTag, now, nil},
		{"tampered", &tampered, now, ErrBadSignature},
		{"unknown", signedPGPTag(t, stranger, now.Add(-time.Minute), false), now, ErrUnknownSigner},
		{"expired now", signedPGPTag(t, expired, now.Add(-47*time.Hour), false), now, ErrKeyExpired},
		{"expired key, checked while valid", signedPGPTag(t, expired, now.Add(-47*time.Hour), false), now.Add(-47 * time.Hour), nil},
		{"revoked (soft, after signing)", revokedTag, now, ErrKeyRevoked},
		{"text mode", signedPGPTag(t, good, now.Add(-time.Minute), true), now, ErrUnsupportedFormat},
		{"signature from the future", rawPGPTag(t, good, now.Add(time.Hour)), now, ErrBadSignature},
		{"signature older than key", rawPGPTag(t, good, now.Add(-2*time.Hour)), now, ErrBadSignature},
		{"two signatures in one block", twoSigTag, now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ring.Verify(tt.tag, tt.now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if s.Type != "openpgp" || s.KeyName != "release" || s.Fingerprint != s.PrimaryFingerprint || s.Fingerprint == "" {
					t.Errorf("signer %+v", s)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "tag signature: ") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line starting with \"tag signature: \"", err)
			}
		})
	}
}

// rawPGPTag signs at any time, even one when the key was not valid, which
// go-crypto's own signing functions refuse to do.
func rawPGPTag(t *testing.T, e *openpgp.Entity, at time.Time) *Tag {
	t.Helper()
	p := tagPayload(testObject, "v1", "A <a@b>", at, "x\n")
	cfg := pgpConfig(at, 0)
	sig := &packet.Signature{Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: e.PrimaryKey.PubKeyAlgo,
		Hash: crypto.SHA256, CreationTime: at, IssuerKeyId: &e.PrimaryKey.KeyId, IssuerFingerprint: e.PrimaryKey.Fingerprint}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(p)
	if err := sig.Sign(h, e.PrivateKey, cfg); err != nil {
		t.Fatal(err)
	}
	tag, err := Parse(append(p, pgptest.Armor(t, "PGP SIGNATURE", sig.Serialize)...))
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// twoSignatureBlock is one armored block holding a signature by each entity.
func twoSignatureBlock(t *testing.T, payload []byte, at time.Time, es ...*openpgp.Entity) []byte {
	var bin bytes.Buffer
	for _, e := range es {
		if err := openpgp.DetachSign(&bin, e, bytes.NewReader(payload), pgpConfig(at, 0)); err != nil {
			t.Fatal(err)
		}
	}
	return pgptest.Armor(t, "PGP SIGNATURE", pgptest.Bytes(bin.Bytes()))
}

func TestOpenPGPSubkey(t *testing.T) {
	now := time.Now()
	e, sub, tag := subkeyEntity(t, now.Add(-time.Hour), now.Add(-time.Minute))
	ring := NewKeyring("subs")
	if err := ring.AddOpenPGP(pgptest.Public(t, e)); err != nil {
		t.Fatal(err)
	}
	s, err := ring.Verify(tag, now)
	if err != nil {
		t.Fatal(err)
	}
	if s.Fingerprint != pgpFingerprint(sub.PublicKey) || s.PrimaryFingerprint != pgpFingerprint(e.PrimaryKey) ||
		s.Principal != "Sub <sub@example.com>" {
		t.Errorf("signer %+v", s)
	}
	if err := ring.AddOpenPGP(pgptest.Public(t, e)); err == nil || !strings.Contains(err.Error(), "already in keyring") {
		t.Errorf("adding the same key twice: %v", err)
	}
}

func TestAddOpenPGPErrors(t *testing.T) {
	e := newPGPEntity(t, "A", "a@example.com", time.Now().Add(-time.Hour), 0)
	priv := pgptest.Armor(t, "PGP PRIVATE KEY BLOCK", func(w io.Writer) error { return e.SerializePrivate(w, nil) })
	other := newPGPEntity(t, "B", "b@example.com", time.Now().Add(-time.Hour), 0)
	if err := other.RevokeKey(packet.NoReason, "", nil); err != nil {
		t.Fatal(err)
	}
	rev := pgptest.Armor(t, "PGP PUBLIC KEY BLOCK", other.Revocations[0].Serialize)

	for name, in := range map[string][]byte{
		"empty":                            nil,
		"not armored":                      []byte("hello"),
		"private key":                      priv,
		"bad armor":                        []byte(pgpPublicKeyBegin + "\n\n!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n"),
		"revocation for a key not present": rev,
	} {
		err := NewKeyring("x").AddOpenPGP(in)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Two blocks in one input are both read.
	k := NewKeyring("x")
	if err := k.AddOpenPGP(append(pgptest.Public(t, e), pgptest.Public(t, newPGPEntity(t, "C", "c@example.com", time.Now(), 0))...)); err != nil {
		t.Fatal(err)
	}
	if len(k.pgp) != 2 {
		t.Errorf("read %d keys from two blocks", len(k.pgp))
	}
}

// sshKeyring returns a keyring whose allowed_signers is line with %s
// replaced by a fresh key, and that key's signer.
func sshKeyring(t *testing.T, line string) (*Keyring, ssh.Signer) {
	t.Helper()
	s, pub := newSSHKey(t)
	k := NewKeyring("ssh")
	if err := k.AddAllowedSigners([]byte(fmt.Sprintf(line, pub))); err != nil {
		t.Fatal(err)
	}
	return k, s
}

func signedSSHTag(t testing.TB, s ssh.Signer, at time.Time, namespace string) *Tag {
	t.Helper()
	p := tagPayload(testObject, "v1.0.0", "Rel Eng <releng@example.com>", at, "release\n")
	tag, err := Parse(append(p, sshSign(t, s, p, namespace)...))
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

func TestSSHVerdicts(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		line      string // %s is the key
		namespace string
		want      error
		principal string
	}{
		{"good", "a@example.com,b@example.com %s comment", "git", nil, "a@example.com"},
		{"wildcard principal", "*@example.com %s", "git", nil, "*@example.com"},
		{"wrong signature namespace", "a@example.com %s", "file", ErrNamespace, ""},
		{"namespaces without git", `a@example.com namespaces="file,email" %s`, "git", ErrNamespace, ""},
		{"namespaces with git", `a@example.com namespaces="file,git" %s`, "git", nil, "a@example.com"},
		{"namespaces glob", `a@example.com namespaces="g?t" %s`, "git", nil, "a@example.com"},
		{"namespaces negated", `a@example.com namespaces="*,!git" %s`, "git", ErrNamespace, ""},
		{"option keyword case", `a@example.com NameSpaces="git" %s`, "git", nil, "a@example.com"},
		{"valid-before past", `a@example.com valid-before="20250601115959Z" %s`, "git", ErrNotValidAtTime, ""},
		{"valid-before inclusive", `a@example.com valid-before="20250601120000" %s`, "git", nil, "a@example.com"},
		{"valid-after future", `a@example.com valid-after="20250601120001Z" %s`, "git", ErrNotValidAtTime, ""},
		{"valid-after UTC suffix", `a@example.com valid-after="20250601UTC" %s`, "git", nil, "a@example.com"},
		{"second line admits", "a@example.com namespaces=\"file\" %[1]s\nb@example.com %[1]s", "git", nil, "b@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, s := sshKeyring(t, tt.line)
			got, err := k.Verify(signedSSHTag(t, s, at, tt.namespace), time.Now())
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Verify error %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fp := ssh.FingerprintSHA256(s.PublicKey())
			if got.Principal != tt.principal || got.Fingerprint != fp || got.PrimaryFingerprint != fp || got.Type != "ssh" {
				t.Errorf("signer %+v", got)
			}
		})
	}

	k, s := sshKeyring(t, "a@example.com %s")
	tag := signedSSHTag(t, s, at, "git")
	if err := k.AddSSHRevoked(ssh.MarshalAuthorizedKey(s.PublicKey())); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(tag, time.Now()); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("revoked: %v", err)
	}
	other, _ := newSSHKey(t)
	if _, err := k.Verify(signedSSHTag(t, other, at, "git"), time.Now()); !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("unknown: %v", err)
	}
	tampered := *tag
	tampered.Payload = bytes.Replace(tag.Payload, []byte("release"), []byte("Release"), 1)
	k2 := NewKeyring("ssh")
	if err := k2.AddAllowedSigners(append([]byte("a@example.com "), ssh.MarshalAuthorizedKey(s.PublicKey())...)); err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Verify(&tampered, time.Now()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
}

// TestSSHRSASHA1 checks that an SSHSIG made with the legacy ssh-rsa (SHA-1)
// algorithm is refused even though the math checks out, as ssh-keygen does
// (sshsig.c: "RSA signature uses unacceptable algorithm").
func TestSSHRSASHA1(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k := NewKeyring("rsa")
	if err := k.AddAllowedSigners([]byte("r@example.com " + string(ssh.MarshalAuthorizedKey(signer.PublicKey())))); err != nil {
		t.Fatal(err)
	}
	p := tagPayload(testObject, "v1", "R <r@example.com>", time.Now(), "x\n")
	good, err := Parse(append(p, sshSign(t, signer, p, "git")...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(good, time.Now()); err != nil {
		t.Fatalf("rsa-sha2-512: %v", err)
	}
	sha1Tag, err := Parse(append(p, rsaSHA1SSHSIG(t, signer, p)...))
	if err != nil {
		t.Fatal(err)
	}
	// sshsig v0.2.0 already refuses the format while parsing; verifySSH
	// checks again in case a later version does not.
	if _, err := k.Verify(sha1Tag, time.Now()); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
		t.Fatalf("ssh-rsa: %v, want a refusal", err)
	}
}

// rsaSHA1SSHSIG builds an SSHSIG over payload signed with ssh-rsa (SHA-1),
// which sshsig.Sign will not make.
func rsaSHA1SSHSIG(t testing.TB, signer ssh.Signer, payload []byte) []byte {
	t.Helper()
	h := sha512.Sum512(payload)
	blob := append([]byte("SSHSIG"), ssh.Marshal(struct{ Namespace, Reserved, Hash, Digest string }{"git", "", "sha512", string(h[:])})...)
	sig, err := signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, blob, ssh.KeyAlgoRSA)
	if err != nil {
		t.Fatal(err)
	}
	return sshsig.Armor(&sshsig.Signature{Version: 1, PublicKey: signer.PublicKey(), Namespace: "git", HashAlgorithm: sshsig.HashSHA512, Signature: sig})
}

func TestAllowedSignersErrors(t *testing.T) {
	_, pub := newSSHKey(t)
	tests := []struct {
		name, file, want string
		kind             error
	}{
		{"unknown option", "# c\n\na@b no-touch-required " + pub, "allowed_signers line 3: unknown option", ErrMalformed},
		{"unquoted value", "a@b namespaces=git " + pub, "line 1: option namespaces: value \"git\" must be in double quotes", ErrMalformed},
		{"bad date", `a@b valid-after="20251301" ` + pub, "line 1: option valid-after: \"20251301\" is not a valid date", ErrMalformed},
		{"short date", `a@b valid-before="202501" ` + pub, "is not YYYYMMDD", ErrMalformed},
		{"date with letters", `a@b valid-before="2025O101" ` + pub, "is not YYYYMMDD", ErrMalformed},
		{"window inverted", `a@b valid-after="20260101",valid-before="20250101" ` + pub, "earlier than valid-after", ErrMalformed},
		{"repeated option", `a@b namespaces="git",namespaces="file" ` + pub, "given twice", ErrMalformed},
		{"empty namespace", `a@b namespaces="git," ` + pub, "empty namespace", ErrMalformed},
		{"cert-authority", "*@b cert-authority " + pub, "line 1: cert-authority", ErrUnsupportedFormat},
		{"negated principal", "a@b,!c@b " + pub, "negated principal", ErrMalformed},
		{"empty principal", "a@b,, " + pub, "empty principal", ErrMalformed},
		{"quoted principals", `"a b" ` + pub, "quoted principals", ErrMalformed},
		{"no key", "a@b", "want \"principals", ErrMalformed},
		{"bad key", "a@b ssh-ed25519 AAAA", "no valid options and public key", ErrMalformed},
		{"key type mismatch", "a@b ssh-rsa" + strings.TrimPrefix(pub, "ssh-ed25519"), "no valid options and public key", ErrMalformed},
		{"control character", "a@b\x01 " + pub, "control character", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := NewKeyring("x")
			err := k.AddAllowedSigners([]byte(tt.file))
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %v containing %q", err, tt.kind, tt.want)
			}
			if len(k.signers) != 0 {
				t.Errorf("a failed file added %d entries", len(k.signers))
			}
		})
	}
	k := NewKeyring("ok")
	if err := k.AddAllowedSigners([]byte("# comment\r\n\r\n  a@b " + pub + " trailing comment\r\n")); err != nil {
		t.Fatalf("CRLF file with comments: %v", err)
	}
}

func TestAddSSHRevoked(t *testing.T) {
	_, pub := newSSHKey(t)
	k := NewKeyring("x")
	if err := k.AddSSHRevoked([]byte(krlMagic + "\x00\x00\x00\x01rest")); !errors.Is(err, ErrUnsupportedFormat) || !strings.Contains(err.Error(), "KRL") {
		t.Errorf("binary KRL: %v", err)
	}
	if err := k.AddSSHRevoked([]byte("# c\n" + pub + " comment\n\n")); err != nil {
		t.Errorf("key list: %v", err)
	}
	if err := k.AddSSHRevoked([]byte("# c\nnot a key\n")); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("garbage: %v", err)
	}
	if err := k.AddSSHRevoked([]byte(`restrict,command="x" ` + pub + "\n")); !errors.Is(err, ErrMalformed) {
		t.Errorf("options: %v", err)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"git", "git", true}, {"git", "*", true}, {"git", "g*", true}, {"git", "?i?", true},
		{"git", "gi", false}, {"git", "gitx", false}, {"git", "*x", false}, {"", "*", true},
		{"git", "**t", true}, {"0*0", "0*", true}, {"a*b", "*b", true}, {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", strings.Repeat("a*", 20) + "c", false},
	}
	for _, tt := range tests {
		if got := matchPattern(tt.s, tt.p); got != tt.want {
			t.Errorf("matchPattern(%q, %q) = %v", tt.s, tt.p, got)
		}
	}
	if !matchPatternList("git", []string{"file", "g*"}) || matchPatternList("git", []string{"*", "!git"}) || matchPatternList("git", []string{"!file"}) {
		t.Error("matchPatternList")
	}
}

// TestAddOpenPGPFailureLeavesKeyring: an input that fails leaves the keyring
// as it was, revocations included. A valid revocation of a trusted key
// followed by one for a key the keyring lacks must not revoke the first.
func TestAddOpenPGPFailureLeavesKeyring(t *testing.T) {
	now := time.Now()
	trusted := newPGPEntity(t, "Rel Eng", "releng@example.com", now.Add(-time.Hour), 0)
	ring := NewKeyring("release")
	if err := ring.AddOpenPGP(pgptest.Public(t, trusted)); err != nil {
		t.Fatal(err)
	}
	tag := signedPGPTag(t, trusted, now.Add(-time.Minute), false)
	if _, err := ring.Verify(tag, now); err != nil {
		t.Fatal(err)
	}

	revocationBlock := func(e *openpgp.Entity) []byte {
		if err := e.RevokeKey(packet.KeyCompromised, "lost", pgpConfig(now.Add(-time.Second), 0)); err != nil {
			t.Fatal(err)
		}
		return pgptest.Armor(t, "PGP PUBLIC KEY BLOCK", e.Revocations[len(e.Revocations)-1].Serialize)
	}
	stranger := newPGPEntity(t, "Stranger", "stranger@example.com", now.Add(-time.Hour), 0)
	in := append(revocationBlock(trusted), revocationBlock(stranger)...)
	if err := ring.AddOpenPGP(in); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "not in the keyring") {
		t.Fatalf("revocations with one for an unknown key: %v", err)
	}
	if _, err := ring.Verify(tag, now); err != nil {
		t.Fatalf("a failed AddOpenPGP changed the keyring: %v", err)
	}

	// The same revocation alone takes effect.
	if err := ring.AddOpenPGP(revocationBlock(trusted)); err != nil {
		t.Fatal(err)
	}
	if _, err := ring.Verify(tag, now); !errors.Is(err, ErrKeyRevoked) {
		t.Fatalf("after the revocation: %v, want ErrKeyRevoked", err)
	}
}

func TestExpiring(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	day := uint32(24 * 3600)
	expired := newPGPEntity(t, "Expired", "expired@example.com", now.Add(-48*time.Hour), 3600)
	soon := newPGPEntity(t, "Soon", "soon@example.com", now.Add(-time.Hour), 10*day)
	later := newPGPEntity(t, "Later", "later@example.com", now.Add(-time.Hour), 60*day)
	never := newPGPEntity(t, "Never", "never@example.com", now.Add(-time.Hour), 0)
	revoked := newPGPEntity(t, "Revoked", "revoked@example.com", now.Add(-time.Hour), 10*day)
	if err := revoked.RevokeKey(packet.KeySuperseded, "", pgpConfig(now.Add(-time.Minute), 0)); err != nil {
		t.Fatal(err)
	}
	sub, _, _ := subkeyEntity(t, now.Add(-time.Hour), now)
	ring := NewKeyring("release")
	for _, e := range []*openpgp.Entity{soon, never, later, expired, revoked, sub} {
		if err := ring.AddOpenPGP(pgptest.Public(t, e)); err != nil {
			t.Fatal(err)
		}
	}
	got := ring.Expiring(now, now.Add(30*24*time.Hour))
	var names []string
	for _, x := range got {
		names = append(names, x.Name)
	}
	if strings.Join(names, ",") != "Expired <expired@example.com>,Soon <soon@example.com>" {
		t.Fatalf("Expiring = %+v", got)
	}
	if !got[0].Expires.Equal(now.Add(-47*time.Hour)) || !got[1].Expires.Equal(now.Add(-time.Hour).Add(10*24*time.Hour)) ||
		got[1].Fingerprint != pgpFingerprint(soon.PrimaryKey) {
		t.Errorf("Expiring = %+v", got)
	}
}
