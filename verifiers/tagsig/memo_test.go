package tagsig

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/crypto/ssh"

	"github.com/modgate/modgate/internal/memo"
	"github.com/modgate/modgate/internal/pgptest"
)

// freshVerify verifies tag with a new keyring holding e (as it is now):
// the library's answer, with no memo.
func freshVerify(t *testing.T, e *openpgp.Entity, tag *Tag, now time.Time) error {
	t.Helper()
	ring := NewKeyring("r")
	if err := ring.AddOpenPGP(pgptest.Public(t, e)); err != nil {
		t.Fatal(err)
	}
	_, err := ring.Verify(tag, now)
	return err
}

func sameVerdict(t *testing.T, what string, got, want error, kind error) {
	t.Helper()
	if !errors.Is(got, kind) || got == nil != (want == nil) || got != nil && got.Error() != want.Error() {
		t.Errorf("%s: memo hit says %v, a fresh keyring %v (want %v)", what, got, want, kind)
	}
}

// TestMemoRechecks: once a signature's cryptography is remembered, what
// depends on the time and the keyring is still checked on every call, with
// the same answers the library gives without the memo: expiry, revocation
// of a primary key and of a signing subkey, ssh revocation, and a changed
// payload.
func TestMemoRechecks(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	ok := func(ring *Keyring, tag *Tag, at time.Time) {
		t.Helper()
		for range 2 { // the first call fills the memo, the second hits it
			if _, err := ring.Verify(tag, at); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Expiry: a key valid for two hours, created an hour ago.
	exp := newPGPEntity(t, "Exp", "exp@example.com", now.Add(-time.Hour), 7200)
	ring := NewKeyring("r")
	if err := ring.AddOpenPGP(pgptest.Public(t, exp)); err != nil {
		t.Fatal(err)
	}
	tag := signedPGPTag(t, exp, now.Add(-time.Minute), false)
	ok(ring, tag, now)
	if n := ring.memo.Len(); n != 1 {
		t.Errorf("memo holds %d entries, want 1", n)
	}
	later := now.Add(3 * time.Hour)
	_, err := ring.Verify(tag, later)
	sameVerdict(t, "expired", err, freshVerify(t, exp, tag, later), ErrKeyExpired)

	// Revocation of the primary key, after the memo has it.
	rev := newPGPEntity(t, "Rev", "rev@example.com", now.Add(-time.Hour), 0)
	ring = NewKeyring("r")
	if err := ring.AddOpenPGP(pgptest.Public(t, rev)); err != nil {
		t.Fatal(err)
	}
	tag = signedPGPTag(t, rev, now.Add(-time.Minute), false)
	ok(ring, tag, now)
	if err := rev.RevokeKey(packet.KeyCompromised, "stolen", pgpConfig(now.Add(-30*time.Second), 0)); err != nil {
		t.Fatal(err)
	}
	ring.pgp[0].Revocations = rev.Revocations
	_, err = ring.Verify(tag, now)
	sameVerdict(t, "revoked", err, freshVerify(t, rev, tag, now), ErrKeyRevoked)

	// Revocation of the signing subkey.
	sub, sk, tag := subkeyEntity(t, now.Add(-time.Hour), now.Add(-time.Minute))
	ring = NewKeyring("r")
	if err := ring.AddOpenPGP(pgptest.Public(t, sub)); err != nil {
		t.Fatal(err)
	}
	ok(ring, tag, now)
	if err := sub.RevokeSubkey(sk, packet.KeyCompromised, "stolen", pgpConfig(now.Add(-30*time.Second), 0)); err != nil {
		t.Fatal(err)
	}
	rs := &ring.pgp[0].Subkeys[len(ring.pgp[0].Subkeys)-1]
	rs.Revocations = sk.Revocations
	_, err = ring.Verify(tag, now)
	sameVerdict(t, "subkey revoked", err, freshVerify(t, sub, tag, now), ErrKeyRevoked)

	// SSH: revocation after the memo has the signature; a changed payload
	// with the remembered signature is another memo key.
	k, s := sshKeyring(t, "a@example.com %s")
	stag := signedSSHTag(t, s, now, "git")
	ok(k, stag, now)
	tampered := *stag
	tampered.Payload = bytes.Replace(stag.Payload, []byte("release"), []byte("Release"), 1)
	if _, err := k.Verify(&tampered, now); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered after a memo hit: %v", err)
	}
	if err := k.AddSSHRevoked(ssh.MarshalAuthorizedKey(s.PublicKey())); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(stag, now); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("ssh revoked after a memo hit: %v", err)
	}
}

// TestExpectSignatures: a keyring told to expect n signatures keeps n in
// its memo (the default bound is memo.DefaultMax).
func TestExpectSignatures(t *testing.T) {
	k := NewKeyring("team")
	n := memo.DefaultMax + 1000
	k.ExpectSignatures(n)
	for i := range n {
		k.memo.Add(memo.Key([]byte(strconv.Itoa(i))))
	}
	if got := k.memo.Len(); got != n {
		t.Errorf("memo holds %d of %d signatures", got, n)
	}
}
