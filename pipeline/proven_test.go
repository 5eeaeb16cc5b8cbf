package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/sumdbtest"
	"github.com/modgate/modgate/internal/testrepo"
	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/sbom/sbomtest"
	"github.com/modgate/modgate/sumlog"
	"github.com/modgate/modgate/verifiers/depsum"
	"github.com/modgate/modgate/verifiers/integrity"
)

// provenFixture is a fixture whose pipeline has everything a shallow
// re-verification proves against, so that runs remember what they proved:
// modgate's checksum log, a cosign signer and a policy set.
type provenFixture struct {
	*fixture
	log      *sumlog.Log
	verifier note.Verifier
	policy   string // the policy directory
}

const mitPolicy = `modules: [corp.example]
rules:
  - name: module-license
    expr: input.licenses.size() > 0 && input.licenses.all(l, licenses.allowed(l, ["MIT"]))
    message: "{{input.module.path}} is not MIT"
`

func newProvenFixture(t *testing.T, modPath string, configure func(f *fixture)) *provenFixture {
	t.Helper()
	f := newFixture(t, modPath)
	f.repo.Write(map[string]string{"LICENSE": testrepo.MITLicense})
	f.repo.Commit("license")
	if configure != nil {
		configure(f)
	}
	skey, _, err := sumlog.GenerateKey("sum.proven.example")
	if err != nil {
		t.Fatal(err)
	}
	ls, lv, _, err := sumlog.ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := sumlog.Open(filepath.Join(t.TempDir(), "sumdb"), ls, lv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f.p, err = New(f.cfg, Options{Store: f.store, ChecksumLog: l, Signer: sbomtest.NewSigner(t)})
	if err != nil {
		t.Fatal(err)
	}
	pf := &provenFixture{fixture: f, log: l, verifier: lv, policy: t.TempDir()}
	pf.setPolicy(t, mitPolicy)
	return pf
}

func (pf *provenFixture) setPolicy(t *testing.T, yaml string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(pf.policy, "p.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := policies.Load(pf.policy)
	if err != nil {
		t.Fatal(err)
	}
	pf.p.SetPolicies(set)
}

// admitTag tags HEAD (gpg or ssh) and admits it.
func (pf *provenFixture) admitTag(t *testing.T, tag string, ssh bool) module.Version {
	t.Helper()
	if ssh {
		pf.repo.TagSSH(tag)
	} else {
		pf.repo.TagGPG(tag)
	}
	v := pf.admit(tag)
	if v.Result != Admitted {
		t.Fatalf("admission of %s: %s %v", tag, v.Result, v.Lines())
	}
	return moduleVersion(v)
}

// run re-verifies vs in one run, as a shard does.
func (pf *provenFixture) run(t *testing.T, vs ...module.Version) []*Reverified {
	t.Helper()
	ctx := context.Background()
	rv, err := pf.p.NewReverifier(ctx, ReverifyOptions{Log: pf.log, Verifier: pf.verifier, Versions: len(vs)})
	if err != nil {
		t.Fatal(err)
	}
	var out []*Reverified
	for _, m := range vs {
		res, err := rv.Version(ctx, m)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		out = append(out, res)
	}
	return out
}

// expect checks one result: passed or not, remembered or not, and when it
// failed, that some problem is of check.
func expect(t *testing.T, what string, res *Reverified, passed, remembered bool, check string) {
	t.Helper()
	if res.Passed() != passed || res.Remembered != remembered {
		t.Errorf("%s: %s passed %v remembered %v, want %v %v: %v", what, res.Version, res.Passed(), res.Remembered, passed, remembered, res.Lines())
		return
	}
	if !passed {
		for _, p := range res.Problems {
			if p.Check == check {
				return
			}
		}
		t.Errorf("%s: %s failed without a %s problem: %v", what, res.Version, check, res.Lines())
	}
}

// flip changes one byte of a stored file in place and returns a func that
// puts it back.
func flip(t *testing.T, name string) func() {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) == 0 {
		t.Fatalf("%s is empty", name)
	}
	changed := append([]byte(nil), data...)
	i := len(changed) / 2
	if name[len(name)-len(".ziphash"):] == ".ziphash" {
		i = 4 // inside the base64 of the hash, not its prefix
	}
	changed[i] ^= 0x01
	write := func(b []byte) {
		if err := os.Chmod(name, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	write(changed)
	return func() { write(data) }
}

func (pf *provenFixture) file(m module.Version, suffix string) string {
	ep, _ := module.EscapePath(m.Path)
	ev, _ := module.EscapeVersion(m.Version)
	return filepath.Join(pf.store.Root(), filepath.FromSlash(ep), "@v", ev+suffix)
}

// TestProvenRemembersAndRechecks: a second run over unchanged bytes and
// trust takes every version from the memo, and each thing a proof rests on
// takes a version out of it when it changes, so that the version is proven
// in full and fails for that reason: one byte of any file a run reads, the
// signer keys (an ssh key revoked while the process runs), the policies,
// the time (for the tag's OpenPGP key and for a policy that measures age).
// Put back, the version is remembered again. A log that grew keeps what
// its earlier tree proved.
func TestProvenRemembersAndRechecks(t *testing.T) {
	var revoked string
	pf := newProvenFixture(t, "corp.example/proven", func(f *fixture) {
		revoked = filepath.Join(t.TempDir(), "revoked")
		if err := os.WriteFile(revoked, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		f.cfg.Signers[0].SSHRevokedKeys = revoked
	})
	gpg := pf.admitTag(t, "v1.0.0", false)
	ssh := pf.admitTag(t, "v1.1.0", true)
	both := func(what string, gpgPassed, gpgRemembered, sshPassed, sshRemembered bool, check string) {
		t.Helper()
		rs := pf.run(t, gpg, ssh)
		expect(t, what, rs[0], gpgPassed, gpgRemembered, check)
		expect(t, what, rs[1], sshPassed, sshRemembered, check)
	}
	both("first run", true, false, true, false, "")
	both("second run", true, true, true, true, "")
	// A remembered version's new verification summary says what a full
	// proof's says.
	pf.p.proofs = new(proofs) // forgotten
	proven := pf.run(t, gpg)[0]
	remembered := pf.run(t, gpg)[0]
	if proven.Remembered || !remembered.Remembered {
		t.Fatalf("full %+v, remembered %+v", proven, remembered)
	}
	if a, b := proven.summary, remembered.summary; a != b || a.zipSHA == "" || a.zipH1 == "" || a.sbomSHA == "" {
		t.Errorf("summary of a full proof %+v\nof a remembered one %+v", a, b)
	}
	both("remembered again", true, true, true, false, "")

	// Every file a run reads, one byte changed, then put back.
	checks := map[string]string{".zip": "zip", ".mod": "log-record", ".ziphash": "zip", ".info": "info",
		".spdx.json": "sbom-signature", ".spdx.json.sig": "sbom-signature", ".spdx.json.bundle": "sbom-signature",
		".intoto.jsonl": "summary", ".verdict.json": "record"}
	for _, suffix := range integrity.ReadSuffixes() {
		restore := flip(t, pf.file(gpg, suffix))
		both(suffix+" changed", false, false, true, true, checks[suffix])
		restore()
		both(suffix+" put back", true, true, true, true, "")
	}

	// The ssh key revoked: the ssh-signed version fails; the other is
	// proven again in full (the trust changed) and passes.
	allowed, err := os.ReadFile(pf.cfg.Signers[0].SSHAllowedSigners)
	if err != nil {
		t.Fatal(err)
	}
	_, pub, _ := strings.Cut(string(allowed), " ssh-")
	if err := os.WriteFile(revoked, []byte("ssh-"+pub), 0o644); err != nil {
		t.Fatal(err)
	}
	both("ssh key revoked", true, false, false, false, "tag-signature")
	if err := os.WriteFile(revoked, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	both("revocation withdrawn", true, true, true, true, "")

	// A policy that denies MIT, then the old one again.
	pf.setPolicy(t, strings.Replace(mitPolicy, `["MIT"]`, `["Apache-2.0"]`, 1))
	both("policy denies", false, false, false, false, "policy")
	pf.setPolicy(t, mitPolicy)
	both("policy restored", true, true, true, true, "")

	// The clock a day before the gpg key was made: its signature is not
	// valid then (ssh validity is judged at the tagger time).
	real := pf.p.Now
	pf.p.Now = func() time.Time { return real().Add(-24 * time.Hour) }
	both("before the key", false, false, true, true, "tag-signature")
	pf.p.Now = real
	both("clock back", true, true, true, true, "")

	// A policy that measures age: the same bytes and trust, but decided
	// again at each run's time.
	pf.setPolicy(t, mitPolicy+`  - name: fresh
    expr: age(input.module.time) < duration("48h")
`)
	both("age policy, now", true, false, true, false, "")
	both("age policy, again", true, true, true, true, "")
	pf.p.Now = func() time.Time { return real().Add(72 * time.Hour) }
	both("age policy, three days on", false, false, false, false, "policy")
	pf.p.Now = real
	both("age policy, back", true, true, true, true, "")
	pf.setPolicy(t, mitPolicy)

	// The log grows: what the earlier tree proved holds in the new one.
	pf.repo.Write(map[string]string{"more.go": "package proven\n"})
	pf.repo.Commit("more")
	newer := pf.admitTag(t, "v1.2.0", false)
	both("log grew", true, true, true, true, "")
	rs := pf.run(t, newer)
	expect(t, "new version", rs[0], true, false, "")
}

// TestProvenPublicDatabase: a version whose dependencies were proven
// against the public checksum database is remembered with the database
// client's epoch; under another (here: a database that now disagrees) it
// is proven again and fails, naming the dependency.
func TestProvenPublicDatabase(t *testing.T) {
	const dep, good, bad = "example.com/dep", "h1:Z0ob1TCMAAk2zW+MvSYz6Lu1uV9GhmsFnTBvmFq4eJ4=", "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	const modh = "h1:7mFAnz3hE1Ai7AOVrnGhpqPyNXmlOSM5E0kKPkpVRuI="
	record := func(zip string) map[string]string {
		return map[string]string{dep + "@v1.0.0": fmt.Sprintf("%s v1.0.0 %s\n%s v1.0.0/go.mod %s\n", dep, zip, dep, modh)}
	}
	skey, vkey := sumdbtest.Key(t, "sum.public.example")
	serve := func(records map[string]string) string {
		h := http.StripPrefix("/sumdb/sum.public.example", sumdbtest.New(skey, records).Handler())
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/sumdb/sum.public.example/supported" {
				return
			}
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	pf := newProvenFixture(t, "corp.example/withdep", func(f *fixture) {
		f.cfg.PublicSumDB.GOPROXY, f.cfg.PublicSumDB.GOSUMDB = serve(record(good)), vkey
		f.repo.Write(map[string]string{
			"go.mod": "module corp.example/withdep\n\ngo 1.21\n\nrequire example.com/dep v1.0.0\n",
			"go.sum": fmt.Sprintf("%s v1.0.0 %s\n%s v1.0.0/go.mod %s\n", dep, good, dep, modh),
		})
		f.repo.Commit("with a dependency")
	})
	m := pf.admitTag(t, "v1.0.0", false)
	expect(t, "first run", pf.run(t, m)[0], true, false, "")
	expect(t, "second run", pf.run(t, m)[0], true, true, "")

	// Another database under the same name and key, which disagrees.
	disagrees, err := depsum.NewSumDB(depsum.SumDBOptions{Key: vkey, URL: serve(record(bad)) + "/sumdb/sum.public.example", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pf.p.publicDB.mu.Lock()
	agrees := pf.p.publicDB.db
	pf.p.publicDB.db = disagrees
	pf.p.publicDB.mu.Unlock()
	res := pf.run(t, m)[0]
	expect(t, "database disagrees", res, false, false, "dependencies")
	if !strings.Contains(res.Reason(), "checksum mismatch") || !strings.Contains(res.Reason(), bad) {
		t.Errorf("reason %q", res.Reason())
	}
	pf.p.publicDB.mu.Lock()
	pf.p.publicDB.db = agrees
	pf.p.publicDB.mu.Unlock()
	expect(t, "database agrees again", pf.run(t, m)[0], true, true, "")
}

// TestProvenTreeExtends: a proof's tree holds in a run whose head extends
// it (a consistency proof), and not when the head is another history, a
// smaller tree or no tree.
func TestProvenTreeExtends(t *testing.T) {
	pf := newProvenFixture(t, "corp.example/trees", nil)
	pf.admitTag(t, "v1.0.0", false)
	ctx := context.Background()
	earlier, _, err := pf.log.TreeHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pf.repo.Write(map[string]string{"more.go": "package trees\n"})
	pf.repo.Commit("more")
	pf.admitTag(t, "v1.1.0", true)
	rv, err := pf.p.NewReverifier(ctx, ReverifyOptions{Log: pf.log, Verifier: pf.verifier})
	if err != nil {
		t.Fatal(err)
	}
	head := rv.head.Tree
	forked := earlier
	forked.Hash[0] ^= 1
	for _, tc := range []struct {
		name string
		tree tlog.Tree
		want bool
	}{
		{"the head", head, true},
		{"an earlier head", earlier, true},
		{"another history", forked, false},
		{"a larger tree", tlog.Tree{N: head.N + 1, Hash: head.Hash}, false},
		{"no tree", tlog.Tree{}, false},
	} {
		for range 2 { // the second time from what the run found
			if got := rv.extends(&tc.tree); got != tc.want {
				t.Errorf("%s (%d records): extends %v, want %v", tc.name, tc.tree.N, got, tc.want)
			}
		}
	}
}

// TestStoredFiles: a run reads the files integrity's short way reads, each
// once, and no other.
func TestStoredFiles(t *testing.T) {
	want := map[string]bool{}
	for _, s := range integrity.ReadSuffixes() {
		want[s] = true
	}
	for i, f := range storedFiles {
		if !want[f.suffix] {
			t.Errorf("storedFiles[%d] = %s: not a file the short way reads (or read twice)", i, f.suffix)
		}
		delete(want, f.suffix)
	}
	if len(want) > 0 {
		t.Errorf("files the short way reads that a run does not: %v", want)
	}
	for i, f := range map[int]string{fileInfo: ".info", fileZip: ".zip", fileZipHash: ".ziphash", fileSPDX: ".spdx.json", fileVerdict: ".verdict.json"} {
		if storedFiles[i].suffix != f {
			t.Errorf("storedFiles[%d] is %s, want %s", i, storedFiles[i].suffix, f)
		}
	}
}

// TestProvenWithoutPolicies: a configuration without policies (admission
// rests on repositories and signers) remembers proofs too, under the same
// rules; a policy set loaded later is other trust.
func TestProvenWithoutPolicies(t *testing.T) {
	pf := newProvenFixture(t, "corp.example/nopolicy", nil)
	m := pf.admitTag(t, "v1.0.0", true)
	pf.p.SetPolicies(nil)
	expect(t, "first run", pf.run(t, m)[0], true, false, "")
	expect(t, "second run", pf.run(t, m)[0], true, true, "")
	restore := flip(t, pf.file(m, ".zip"))
	expect(t, "zip changed", pf.run(t, m)[0], false, false, "zip")
	restore()
	expect(t, "zip put back", pf.run(t, m)[0], true, true, "")
	pf.setPolicy(t, mitPolicy)
	expect(t, "policies loaded", pf.run(t, m)[0], true, false, "")
}
