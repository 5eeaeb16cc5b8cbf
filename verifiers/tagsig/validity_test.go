package tagsig

import (
	"errors"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/modgate/modgate/internal/pgptest"
)

// TestValidityAgrees: for signatures that verified at one time, the
// Validity Verify returned gives, at other times, exactly Verify's verdict
// then (same keyring, same tag): through key expiry, signature expiry, a
// revocation dated later, a subkey's expiry, a clock set back before the
// signature, and for SSH, never a change.
func TestValidityAgrees(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	ring := func(e *openpgp.Entity) *Keyring {
		t.Helper()
		k := NewKeyring("r")
		if err := k.AddOpenPGP(pgptest.Public(t, e)); err != nil {
			t.Fatal(err)
		}
		return k
	}
	check := func(name string, k *Keyring, tag *Tag, at time.Time, times ...time.Time) {
		t.Helper()
		s, err := k.Verify(tag, at)
		if err != nil {
			t.Fatalf("%s: Verify at %v: %v", name, at, err)
		}
		v := s.Validity()
		changed := false
		for _, when := range times {
			_, want := k.Verify(tag, when)
			got := v.At(when)
			if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
				t.Errorf("%s at %v: Validity says %v, Verify %v", name, when.Sub(at), got, want)
			}
			changed = changed || want != nil
		}
		if !changed && len(times) > 1 {
			t.Errorf("%s: no time tried makes Verify refuse: the case tests nothing", name)
		}
	}
	later := func(ds ...time.Duration) []time.Time {
		var ts []time.Time
		for _, d := range ds {
			ts = append(ts, now.Add(d))
		}
		return ts
	}

	// A key valid for two hours, created an hour ago.
	exp := newPGPEntity(t, "Exp", "exp@example.com", now.Add(-time.Hour), 7200)
	check("key expiry", ring(exp), signedPGPTag(t, exp, now.Add(-time.Minute), false), now,
		later(0, 30*time.Minute, 59*time.Minute, 61*time.Minute, 48*time.Hour, -2*time.Minute)...)

	// A signature that expires after a day.
	sigExp := newPGPEntity(t, "Sig", "sig@example.com", now.Add(-time.Hour), 0)
	cfg := pgpConfig(now.Add(-time.Minute), 0)
	cfg.SigLifetimeSecs = 86400
	tag := signTagWith(t, sigExp, tagPayload(testObject, "v1.0.0", "Sig <sig@example.com>", now.Add(-time.Minute), "release\n"), cfg)
	check("signature expiry", ring(sigExp), tag, now, later(time.Hour, 23*time.Hour, 25*time.Hour)...)

	// A revocation dated an hour from now (gpg takes it from then), for
	// superseding (so not backdated), in the keyring from the start.
	rev := newPGPEntity(t, "Rev", "rev@example.com", now.Add(-time.Hour), 0)
	revTag := signedPGPTag(t, rev, now.Add(-time.Minute), false)
	if err := rev.RevokeKey(packet.KeySuperseded, "replaced", pgpConfig(now.Add(time.Hour), 0)); err != nil {
		t.Fatal(err)
	}
	check("revocation dated later", ring(rev), revTag, now, later(30*time.Minute, 2*time.Hour)...)

	// A signing subkey whose own binding expires before its primary key.
	sub, _, subTag := subkeyEntityFor(t, now.Add(-time.Hour), now.Add(-time.Minute), 3*3600)
	check("subkey expiry", ring(sub), subTag, now, later(time.Hour, 3*time.Hour)...)

	// SSH: judged at the tagger time, whatever the time of asking.
	k, s := sshKeyring(t, `a@example.com valid-before="20300101" %s`)
	sshTag := signedSSHTag(t, s, now, "git")
	sv, err := k.Verify(sshTag, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, when := range later(-24*time.Hour, 0, 100*365*24*time.Hour) {
		if err := sv.Validity().At(when); err != nil {
			t.Errorf("ssh at %v: %v", when, err)
		}
	}

	// A Signer Verify did not return has no validity.
	if err := new(Signer).Validity().At(now); !errors.Is(err, ErrMalformed) {
		t.Errorf("zero Validity: %v", err)
	}
}

// TestSigExpiredAgrees: sigExpired is the library's SigExpired, to the
// second, on both sides of creation and expiry.
func TestSigExpiredAgrees(t *testing.T) {
	created := time.Date(2026, 3, 4, 5, 6, 7, 500_000_000, time.UTC)
	for _, lifetime := range []uint32{0, 1, 3600, 1 << 31} {
		for _, d := range []time.Duration{-time.Hour, -time.Second, -time.Millisecond, 0, 499 * time.Millisecond, time.Second,
			time.Duration(lifetime) * time.Second, time.Duration(lifetime)*time.Second + time.Second, 1000 * time.Hour} {
			now := created.Add(d)
			sig := &packet.Signature{CreationTime: created}
			if lifetime != 0 {
				sig.SigLifetimeSecs = &lifetime
			}
			if got, want := sigExpired(created, lifetime, now), sig.SigExpired(now); got != want {
				t.Errorf("lifetime %d, %v after creation: sigExpired %v, library %v", lifetime, d, got, want)
			}
		}
	}
}
