package tagsig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"
)

// pgpConfig makes go-crypto produce what gpg 2.2 reads: v4 keys, legacy
// EdDSA over Curve25519, with the clock set to at.
func pgpConfig(at time.Time, lifetime uint32) *packet.Config {
	return &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Curve:           packet.Curve25519,
		DefaultHash:     0, // SHA-256
		Time:            func() time.Time { return at },
		KeyLifetimeSecs: lifetime,
	}
}

// newPGPEntity creates an OpenPGP key created at created, expiring after
// lifetime seconds (0: never).
func newPGPEntity(tb testing.TB, name, email string, created time.Time, lifetime uint32) *openpgp.Entity {
	tb.Helper()
	e, err := openpgp.NewEntity(name, "", email, pgpConfig(created, lifetime))
	if err != nil {
		tb.Fatalf("NewEntity: %v", err)
	}
	return e
}

// pgpSign makes an armored detached signature over payload at time at, in
// binary mode or, with text, in text mode.
func pgpSign(tb testing.TB, e *openpgp.Entity, payload []byte, at time.Time, text bool) []byte {
	tb.Helper()
	var buf bytes.Buffer
	sign := openpgp.ArmoredDetachSign
	if text {
		sign = openpgp.ArmoredDetachSignText
	}
	if err := sign(&buf, e, bytes.NewReader(payload), pgpConfig(at, 0)); err != nil {
		tb.Fatalf("sign: %v", err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// newSSHKey returns an ed25519 ssh signer and its authorized_keys line.
func newSSHKey(tb testing.TB) (ssh.Signer, string) {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s, string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(s.PublicKey())))
}

// sshSign makes an armored SSHSIG over payload as `ssh-keygen -Y sign`.
func sshSign(tb testing.TB, s ssh.Signer, payload []byte, namespace string) []byte {
	tb.Helper()
	sig, err := sshsig.Sign(bytes.NewReader(payload), s, sshsig.HashSHA512, namespace)
	if err != nil {
		tb.Fatalf("sshsig.Sign: %v", err)
	}
	return sshsig.Armor(sig)
}

// tagPayload builds the unsigned part of a tag object.
func tagPayload(object, name, tagger string, when time.Time, msg string) []byte {
	return fmt.Appendf(nil, "object %s\ntype commit\ntag %s\ntagger %s %d +0000\n\n%s",
		object, name, tagger, when.Unix(), msg)
}

// subkeyEntity creates an OpenPGP key with a signing subkey, both created
// at created, and a tag signed by the subkey at at.
func subkeyEntity(tb testing.TB, created, at time.Time) (*openpgp.Entity, *openpgp.Subkey, *Tag) {
	tb.Helper()
	return subkeyEntityFor(tb, created, at, 0)
}

// subkeyEntityFor is subkeyEntity with a subkey valid for lifetime seconds
// (0: as long as its primary key).
func subkeyEntityFor(tb testing.TB, created, at time.Time, lifetime uint32) (*openpgp.Entity, *openpgp.Subkey, *Tag) {
	tb.Helper()
	e := newPGPEntity(tb, "Sub", "sub@example.com", created, 0)
	if err := e.AddSigningSubkey(pgpConfig(created, lifetime)); err != nil {
		tb.Fatal(err)
	}
	sub := &e.Subkeys[len(e.Subkeys)-1]
	cfg := pgpConfig(at, 0)
	cfg.SigningKeyId = sub.PublicKey.KeyId
	return e, sub, signTagWith(tb, e, tagPayload(testObject, "v1", "Sub <sub@example.com>", at, "x\n"), cfg)
}

// signTagWith signs the tag payload p with e as cfg says and parses the
// signed tag.
func signTagWith(tb testing.TB, e *openpgp.Entity, p []byte, cfg *packet.Config) *Tag {
	tb.Helper()
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, e, bytes.NewReader(p), cfg); err != nil {
		tb.Fatal(err)
	}
	sig.WriteByte('\n')
	tag, err := Parse(append(p, sig.Bytes()...))
	if err != nil {
		tb.Fatal(err)
	}
	return tag
}
