package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/pgptest"
)

// TestReloadSigners: a key revoked in the signer files while the process
// runs is revoked for the next admission and the next re-verification run,
// without a restart; key files that no longer load stop both (an error,
// tried again later, never a verdict against keys the files no longer
// say); put right, both go on.
func TestReloadSigners(t *testing.T) {
	f := newFixture(t, "corp.example/reload")
	dir := t.TempDir()
	allowed, revoked := filepath.Join(dir, "allowed_signers"), filepath.Join(dir, "revoked")
	good, err := os.ReadFile(f.cfg.Signers[0].SSHAllowedSigners)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(allowed, good)
	write(revoked, nil)
	f.cfg.Signers[0].SSHAllowedSigners, f.cfg.Signers[0].SSHRevokedKeys = allowed, revoked
	p, err := New(f.cfg, Options{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admit := func(tag string) *Verdict {
		f.repo.TagSSH(tag)
		return p.Admit(ctx, Request{Repo: f.repo.Dir, Tag: tag})
	}
	reverify := func() (*Reverified, error) {
		rv, err := p.NewReverifier(ctx, ReverifyOptions{})
		if err != nil {
			return nil, err
		}
		return rv.Version(ctx, module.Version{Path: "corp.example/reload", Version: "v1.0.0"})
	}
	if v := admit("v1.0.0"); v.Result != Admitted {
		t.Fatalf("admission: %s %v", v.Result, v.Lines())
	}
	if res, err := reverify(); err != nil || !res.Passed() {
		t.Fatalf("re-verification: %+v, %v", res, err)
	}

	// The ssh key is revoked: the next run and the next admission see it.
	_, pub, ok := strings.Cut(string(good), " ssh-")
	if !ok {
		t.Fatalf("no ssh key in %q", good)
	}
	write(revoked, []byte("ssh-"+pub))
	res, err := reverify()
	if err != nil || res.Passed() || res.Problems[0].Check != "tag-signature" || !res.Problems[0].Security ||
		!strings.Contains(res.Problems[0].Reason, "revoked") {
		t.Fatalf("re-verification after the revocation: %+v, %v", res, err)
	}
	if v := admit("v1.1.0"); v.Result != Rejected || !strings.Contains(strings.Join(v.Lines(), "\n"), "revoked") {
		t.Fatalf("admission after the revocation: %s %v", v.Result, v.Lines())
	}

	// The allowed signers file is broken: no run, no verdict.
	write(allowed, []byte("releng@example.com not-a-key\n"))
	if _, err := reverify(); !errors.Is(err, ErrSignerKeys) || !strings.Contains(err.Error(), allowed) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("re-verification with a broken file: %v", err)
	}
	v := admit("v1.2.0")
	if v.Result != Errored || !v.Problems[0].Transient || !strings.Contains(v.Problems[0].Reason, "the signers' key files do not load: signers[0] (release-team): "+allowed) {
		t.Fatalf("admission with a broken file: %s %v", v.Result, v.Lines())
	}

	// Put right and the revocation withdrawn: both go on.
	write(allowed, good)
	write(revoked, nil)
	if res, err := reverify(); err != nil || !res.Passed() {
		t.Fatalf("re-verification after the repair: %+v, %v", res, err)
	}
	if v := p.Admit(ctx, Request{Repo: f.repo.Dir, Tag: "v1.2.0"}); v.Result != Admitted {
		t.Fatalf("admission after the repair: %s %v", v.Result, v.Lines())
	}
}

// TestReverifyWarnsOfExpiry: a run names the OpenPGP keys of its signer
// groups that expire within ExpiryWarning, before any version fails.
func TestReverifyWarnsOfExpiry(t *testing.T) {
	f := newFixture(t, "corp.example/expiry")
	now := time.Now()
	soon, err := openpgp.NewEntity("Soon", "", "soon@example.com", &packet.Config{
		Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return now.Add(-time.Hour) }, KeyLifetimeSecs: 10 * 24 * 3600})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "soon.asc")
	if err := os.WriteFile(keyFile, pgptest.Public(t, soon), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cfg.Signers[0].OpenPGPKeys = append(f.cfg.Signers[0].OpenPGPKeys, keyFile)
	p, err := New(f.cfg, Options{Store: f.store})
	if err != nil {
		t.Fatal(err)
	}
	rv, err := p.NewReverifier(context.Background(), ReverifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := rv.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], `signer group "release-team": openpgp key `) ||
		!strings.Contains(ws[0], "(Soon <soon@example.com>) expires ") || !strings.Contains(ws[0], "in 10 days") {
		t.Errorf("warnings %q", ws)
	}
	// What /metrics exports: every key with an expiry, not only the soon ones.
	ks := p.KeyExpiries()
	if len(ks) != 1 || ks[0].Group != "release-team" || ks[0].Name != "Soon <soon@example.com>" ||
		!ks[0].Expires.Equal(now.Add(-time.Hour).Truncate(time.Second).Add(10*24*time.Hour)) {
		t.Errorf("KeyExpiries = %+v", ks)
	}
}
