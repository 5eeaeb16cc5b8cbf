package tagsig

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/modgate/modgate/internal/pgptest"
)

// The agreement corpus: real git repositories, real `git tag -s` with gpg and
// ssh keys, hand-made tag objects written with `git mktag`, and for every
// case both verdicts: `git verify-tag` with the equivalent gpg keyring and
// allowed_signers/revocation files, and modgate's Parse + Keyring.Verify.
// They must agree, except where a case says modgate is deliberately
// stricter (then git accepts and modgate refuses).

// tagDate is the fixed tagger time of every tag (GIT_COMMITTER_DATE).
var tagDate = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	t         *testing.T
	dir       string // work tree
	home      string
	signHome  string // GNUPGHOME with the secret keys
	vfyHome   string // GNUPGHOME with only the trusted public keys
	allowed   string // allowed_signers file
	revoked   string // ssh revocation file
	baseEnv   []string
	commits   []string
	sshKeyDir string
}

func newHarness(t *testing.T) *harness {
	for _, tool := range []string{"git", "gpg", "gpgconf", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("agreement test needs %s on PATH: %v", tool, err)
		}
	}
	root := t.TempDir()
	h := &harness{t: t, dir: filepath.Join(root, "repo"), home: filepath.Join(root, "home"),
		signHome: filepath.Join(root, "gs"), vfyHome: filepath.Join(root, "gv"),
		allowed: filepath.Join(root, "allowed_signers"), revoked: filepath.Join(root, "revoked_keys"),
		sshKeyDir: filepath.Join(root, "ssh")}
	for _, d := range []string{h.dir, h.home, h.signHome, h.vfyHome, h.sshKeyDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	date := tagDate.Format(time.RFC3339)
	h.baseEnv = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + h.home, "TZ=UTC", "LC_ALL=C",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Rel Eng", "GIT_AUTHOR_EMAIL=releng@example.com",
		"GIT_COMMITTER_NAME=Rel Eng", "GIT_COMMITTER_EMAIL=releng@example.com",
		"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date,
	}
	t.Cleanup(func() {
		for _, gh := range []string{h.signHome, h.vfyHome} {
			cmd := exec.Command("gpgconf", "--kill", "all")
			cmd.Env = append(h.baseEnv, "GNUPGHOME="+gh)
			_ = cmd.Run()
		}
	})
	h.git("init", "-q", "-b", "main")
	for i := 0; i < 2; i++ {
		h.git("commit", "-q", "--allow-empty", "-m", fmt.Sprintf("commit %d", i))
		h.commits = append(h.commits, strings.TrimSpace(h.git("rev-parse", "HEAD")))
	}
	return h
}

// cmd runs a command in the repository and returns its stdout, failing the
// test on a non-zero exit.
func (h *harness) cmd(gnupghome string, stdin []byte, name string, args ...string) string {
	h.t.Helper()
	out, err := h.try(gnupghome, stdin, name, args...)
	if err != nil {
		h.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (h *harness) try(gnupghome string, stdin []byte, name string, args ...string) (string, error) {
	c := exec.Command(name, args...)
	c.Dir = h.dir
	c.Env = append(append([]string(nil), h.baseEnv...), "GNUPGHOME="+gnupghome)
	c.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func (h *harness) git(args ...string) string {
	h.t.Helper()
	return h.cmd(h.signHome, nil, "git", args...)
}

// gpgKey generates a key in the signing home and returns its fingerprint.
func (h *harness) gpgKey(uid, usage string) string {
	h.t.Helper()
	h.cmd(h.signHome, nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", uid, "ed25519", usage, "never")
	return h.fingerprints(uid)[0]
}

// fingerprints lists the primary and subkey fingerprints of uid.
func (h *harness) fingerprints(uid string) []string {
	h.t.Helper()
	out := h.cmd(h.signHome, nil, "gpg", "--batch", "--with-colons", "--list-keys", "="+uid)
	var fprs []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			fprs = append(fprs, f[9])
		}
	}
	if len(fprs) == 0 {
		h.t.Fatalf("no fingerprint for %q in\n%s", uid, out)
	}
	return fprs
}

// sshKey generates an ssh key file and returns its path and public line.
func (h *harness) sshKey(name string) (path, pub string) {
	h.t.Helper()
	path = filepath.Join(h.sshKeyDir, name)
	h.cmd(h.signHome, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path)
	b, err := os.ReadFile(path + ".pub")
	if err != nil {
		h.t.Fatal(err)
	}
	f := strings.Fields(string(b))
	return path, f[0] + " " + f[1]
}

// mktag writes a hand-made tag object and returns its id.
func (h *harness) mktag(obj []byte, args ...string) string {
	h.t.Helper()
	return strings.TrimSpace(h.cmd(h.signHome, obj, "git", append([]string{"mktag"}, args...)...))
}

// gitVerify is git's verdict: `git verify-tag` with the verifying keyrings.
func (h *harness) gitVerify(ref string) (bool, string) {
	c := exec.Command("git", "-c", "gpg.ssh.allowedSignersFile="+h.allowed,
		"-c", "gpg.ssh.revocationFile="+h.revoked, "verify-tag", "-v", ref)
	c.Dir = h.dir
	c.Env = append(append([]string(nil), h.baseEnv...), "GNUPGHOME="+h.vfyHome)
	out, err := c.CombinedOutput()
	return err == nil, string(out)
}

type agreementCase struct {
	name string
	ref  string // tag name or tag object id
	// raw, if set, fetches the object modgate sees (default: cat-file tag).
	raw func() []byte
	// want is the sentinel modgate's refusal must wrap; nil means accept.
	want error
	// stricter explains why modgate refuses a tag that git accepts.
	stricter string
	// principal is the expected Signer.Principal when accepted.
	principal string
}

func TestAgreement(t *testing.T) {
	if testing.Short() {
		t.Skip("agreement test runs git, gpg and ssh-keygen; skipped in -short mode")
	}
	start := time.Now()
	h := newHarness(t)
	head := h.commits[1]
	other := h.commits[0]

	// OpenPGP keys made by gpg.
	fprA := h.gpgKey("Rel Eng <releng@example.com>", "sign")
	fprU := h.gpgKey("Stranger <stranger@example.com>", "sign")
	fprR := h.gpgKey("Revoked Signer <revoked@example.com>", "sign")
	fprS := h.gpgKey("Sub Signer <sub@example.com>", "cert")
	h.cmd(h.signHome, nil, "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-add-key", fprS, "ed25519", "sign", "never")
	subS := h.fingerprints("Sub Signer <sub@example.com>")[1]
	// OpenPGP keys made by go-crypto: one that expired after signing, one
	// valid, both with creation times in the past.
	expCreated := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	expKey := newPGPEntity(t, "Expired Signer", "expired@example.com", expCreated, 3600)
	goodGo := newPGPEntity(t, "Go Signer", "gosigner@example.com", time.Now().Add(-time.Hour), 0)

	// SSH keys.
	type sshk struct{ path, pub string }
	sk := map[string]sshk{}
	for _, n := range []string{"good", "unknown", "before", "after", "nsfile", "revoked", "multi1", "multi2", "window", "nswild", "edge", "late", "twolines"} {
		p, pub := h.sshKey(n)
		sk[n] = sshk{p, pub}
	}
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaSigner, err := ssh.NewSignerFromKey(rsaPriv)
	if err != nil {
		t.Fatal(err)
	}
	allowed := strings.Join([]string{
		"# modgate agreement test",
		"releng@example.com " + sk["good"].pub,
		`old@example.com valid-before="20200101" ` + sk["before"].pub,
		`future@example.com valid-after="20300101Z" ` + sk["after"].pub,
		`filesigner@example.com namespaces="file" ` + sk["nsfile"].pub,
		"revoked@example.com " + sk["revoked"].pub,
		"multi@example.com " + sk["multi1"].pub,
		"multi@example.com,other@example.com " + sk["multi2"].pub,
		`window@example.com valid-after="20250101",valid-before="20251231235959Z" ` + sk["window"].pub,
		`wild@example.com namespaces="*" ` + sk["nswild"].pub,
		// Both bounds are inclusive in ssh-keygen; tagDate is 20250601120000Z.
		`edge@example.com valid-before="20250601120000Z" ` + sk["edge"].pub,
		`late@example.com valid-after="202506011200" ` + sk["late"].pub, // no Z: UTC here, local (TZ=UTC) in git
		`two@example.com namespaces="file" ` + sk["twolines"].pub,
		`two@example.com namespaces="git,file" ` + sk["twolines"].pub,
		"rsa@example.com " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rsaSigner.PublicKey()))),
	}, "\n") + "\n"
	revoked := "# revoked keys\n" + sk["revoked"].pub + " revoked\n"
	writeFile(t, h.allowed, allowed)
	writeFile(t, h.revoked, revoked)

	var cases []agreementCase
	add := func(c agreementCase) { cases = append(cases, c) }
	gitTag := func(name string, cfg ...string) string {
		args := append(append([]string(nil), cfg...), "tag", "-s", "-m", "release "+name, name, head)
		h.git(args...)
		return name
	}
	sshTag := func(name, key string) string {
		return gitTag(name, "-c", "gpg.format=ssh", "-c", "user.signingkey="+sk[key].path)
	}
	gpgDetach := func(payload []byte, fprs ...string) []byte {
		args := []string{"--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--detach-sign"}
		for _, f := range fprs {
			args = append(args, "-u", f+"!")
		}
		return []byte(h.cmd(h.signHome, payload, "gpg", args...))
	}
	sshDetach := func(payload []byte, key, namespace string) []byte {
		return []byte(h.cmd(h.signHome, payload, "ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", sk[key].path))
	}
	catTag := func(ref string) []byte { return []byte(h.git("cat-file", "tag", ref)) }
	const tagger = "Rel Eng <releng@example.com>"
	payloadFor := func(name string) []byte {
		return tagPayload(head, name, tagger, tagDate, "release "+name+"\n")
	}

	// --- OpenPGP ---
	add(agreementCase{name: "gpg good (git tag -s)", ref: gitTag("v1.0.0", "-c", "user.signingkey="+fprA),
		principal: "Rel Eng <releng@example.com>"})
	add(agreementCase{name: "gpg unknown key", ref: gitTag("v-unknown-gpg", "-c", "user.signingkey="+fprU), want: ErrUnknownSigner})
	add(agreementCase{name: "gpg signed by subkey", ref: gitTag("v-subkey", "-c", "user.signingkey="+fprS),
		principal: "Sub Signer <sub@example.com>"})
	add(agreementCase{name: "gpg revoked key (signed before revocation was imported)",
		ref: gitTag("v-revoked-gpg", "-c", "user.signingkey="+fprR), want: ErrKeyRevoked})
	good := catTag("v1.0.0")
	add(agreementCase{name: "gpg tampered message",
		ref: h.mktag(bytes.Replace(good, []byte("release v1.0.0\n"), []byte("release v1.0.1\n"), 1)), want: ErrBadSignature})
	add(agreementCase{name: "gpg tampered tagger",
		ref: h.mktag(bytes.Replace(good, []byte("tagger Rel Eng"), []byte("tagger Rel Eve"), 1)), want: ErrBadSignature})
	add(agreementCase{name: "gpg tampered object id",
		ref: h.mktag(bytes.Replace(good, []byte("object "+head), []byte("object "+other), 1)), want: ErrBadSignature})
	{
		p := tagPayload(head, "v-expired", "Expired Signer <expired@example.com>", expCreated.Add(10*time.Minute), "expired key\n")
		add(agreementCase{name: "gpg key expired after signing (go-crypto key)",
			ref: h.mktag(append(p, pgpSign(t, expKey, p, expCreated.Add(10*time.Minute), false)...)), want: ErrKeyExpired})
	}
	{
		p := payloadFor("v-gocrypto")
		add(agreementCase{name: "gpg good, go-crypto key and signature",
			ref: h.mktag(append(p, pgpSign(t, goodGo, p, time.Now().Add(-time.Minute), false)...)), principal: "Go Signer <gosigner@example.com>"})
		p = payloadFor("v-textmode")
		add(agreementCase{name: "gpg text-mode signature (0x01)",
			ref: h.mktag(append(p, pgpSign(t, goodGo, p, time.Now().Add(-time.Minute), true)...)), want: ErrUnsupportedFormat,
			stricter: "git signs tags in binary mode; a text-mode signature survives CR/LF rewriting of the signed tag"})
	}
	{
		p := payloadFor("v-extra-gpg")
		add(agreementCase{name: "gpg signature block followed by extra text",
			ref: h.mktag(append(append(p, gpgDetach(p, fprA)...), "unsigned trailer\n"...)), want: ErrMalformed,
			stricter: "text after the END line is not covered by the signature but is part of the tag"})
	}
	{
		p := payloadFor("v-two-blocks")
		p2 := append(append([]byte(nil), p...), gpgDetach(p, fprA)...)
		add(agreementCase{name: "two gpg signature blocks (second signs the first)",
			ref: h.mktag(append(p2, gpgDetach(p2, fprA)...)), want: ErrMalformed,
			stricter: "git verifies only the last block; tools that take the first would see a different payload"})
	}
	{
		p := tagPayload(head, "v-crlf", tagger, tagDate, "release with\r\nCRLF lines\r\n")
		add(agreementCase{name: "gpg good, message with CRLF line ends",
			ref: h.mktag(append(p, gpgDetach(p, fprA)...)), principal: "Rel Eng <releng@example.com>"})
	}
	{
		p := fmt.Appendf(nil, "object %s\ntype commit\ntag v-notagger\n\nno tagger\n", head)
		// git 2.39 verify-tag refuses this without running gpg at all.
		add(agreementCase{name: "gpg good, tag without tagger (mktag --no-strict)",
			ref: h.mktag(append(p, gpgDetach(p, fprA)...), "--no-strict"), want: ErrMalformed})
		p = bytes.Replace(payloadFor("v-extra-header"), []byte("\n\n"), []byte("\nnote unsigned-looking\n\n"), 1)
		add(agreementCase{name: "gpg good, extra header after tagger (mktag --no-strict)",
			ref: h.mktag(append(p, gpgDetach(p, fprA)...), "--no-strict"), want: ErrMalformed,
			stricter: "git fsck flags extraHeaderEntry; newer git strips gpgsig headers from the payload"})
	}
	{
		// An inline-signed PGP MESSAGE over other content in place of a
		// detached signature.
		p := payloadFor("v-pgp-message")
		inline := h.cmd(h.signHome, []byte("something else entirely\n"), "gpg", "--batch", "--pinentry-mode", "loopback",
			"--passphrase", "", "--armor", "--sign", "-u", fprA+"!")
		add(agreementCase{name: "gpg PGP MESSAGE (inline-signed other content)",
			ref: h.mktag(append(p, inline...)), want: ErrUnsupportedFormat})
	}
	{
		p := payloadFor("v-two-sigs-one-block")
		add(agreementCase{name: "one gpg block with two signatures (unknown + trusted key)",
			ref: h.mktag(append(p, gpgDetach(p, fprU, fprA)...)), want: ErrMalformed})
	}

	// --- SSH ---
	add(agreementCase{name: "ssh good (git tag -s, gpg.format=ssh)", ref: sshTag("v2.0.0", "good"), principal: "releng@example.com"})
	add(agreementCase{name: "ssh unknown key", ref: sshTag("v-unknown-ssh", "unknown"), want: ErrUnknownSigner})
	add(agreementCase{name: "ssh outside valid-before", ref: sshTag("v-before", "before"), want: ErrNotValidAtTime})
	add(agreementCase{name: "ssh before valid-after", ref: sshTag("v-after", "after"), want: ErrNotValidAtTime})
	add(agreementCase{name: "ssh inside valid-after/valid-before window", ref: sshTag("v-window", "window"), principal: "window@example.com"})
	add(agreementCase{name: "ssh namespaces option without git", ref: sshTag("v-nsfile", "nsfile"), want: ErrNamespace})
	add(agreementCase{name: "ssh namespaces=\"*\" pattern", ref: sshTag("v-nswild", "nswild"), principal: "wild@example.com"})
	add(agreementCase{name: "ssh revoked key", ref: sshTag("v-revoked-ssh", "revoked"), want: ErrKeyRevoked})
	add(agreementCase{name: "ssh principal with two keys, second key signs", ref: sshTag("v-multi", "multi2"), principal: "multi@example.com"})
	add(agreementCase{name: "ssh tagger time == valid-before (inclusive)", ref: sshTag("v-edge", "edge"), principal: "edge@example.com"})
	add(agreementCase{name: "ssh tagger time == valid-after without Z", ref: sshTag("v-late", "late"), principal: "late@example.com"})
	add(agreementCase{name: "ssh key on two lines, only the second allows git", ref: sshTag("v-twolines", "twolines"), principal: "two@example.com"})
	{
		p := tagPayload(head, "v-late-1s", tagger, tagDate.Add(-time.Second), "one second early\n")
		add(agreementCase{name: "ssh tagger time 1s before valid-after",
			ref: h.mktag(append(p, sshDetach(p, "late", "git")...)), want: ErrNotValidAtTime})
	}
	{
		p := payloadFor("v-ns-file")
		add(agreementCase{name: "ssh signature in namespace file (ssh-keygen -Y sign -n file)",
			ref: h.mktag(append(p, sshDetach(p, "good", "file")...)), want: ErrNamespace})
	}
	{
		p := payloadFor("v-rsa-sha1")
		add(agreementCase{name: "ssh RSA key, legacy ssh-rsa (SHA-1) signature",
			ref: h.mktag(append(p, rsaSHA1SSHSIG(t, rsaSigner, p)...)), want: ErrMalformed})
		p = payloadFor("v-rsa-sha512")
		add(agreementCase{name: "ssh RSA key, rsa-sha2-512 signature",
			ref: h.mktag(append(p, sshSign(t, rsaSigner, p, "git")...)), principal: "rsa@example.com"})
	}
	goodSSH := catTag("v2.0.0")
	add(agreementCase{name: "ssh tampered message",
		ref: h.mktag(bytes.Replace(goodSSH, []byte("release v2.0.0\n"), []byte("release v2.0.1\n"), 1)), want: ErrBadSignature})
	{
		p := payloadFor("v-extra-ssh")
		add(agreementCase{name: "ssh signature block followed by extra text",
			ref: h.mktag(append(append(p, sshDetach(p, "good", "git")...), "unsigned trailer\n"...)), want: ErrMalformed,
			stricter: "text after the END line is not covered by the signature but is part of the tag"})
	}

	// --- No usable signature ---
	h.git("tag", "-a", "-m", "unsigned release", "v-unsigned", head)
	add(agreementCase{name: "unsigned annotated tag", ref: "v-unsigned", want: ErrUnsigned})
	h.git("tag", "v-light", head)
	add(agreementCase{name: "lightweight tag (no tag object)", ref: "v-light", want: ErrMalformed,
		raw: func() []byte {
			if typ := strings.TrimSpace(h.git("cat-file", "-t", "v-light")); typ != "commit" {
				t.Fatalf("cat-file -t v-light = %q, want commit", typ)
			}
			return []byte(h.git("cat-file", "commit", "v-light"))
		}})
	{
		p := payloadFor("v-x509")
		x509 := "-----BEGIN SIGNED MESSAGE-----\nMIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0B\n-----END SIGNED MESSAGE-----\n"
		add(agreementCase{name: "x509 signature marker", ref: h.mktag(append(p, x509...)), want: ErrUnsupportedFormat})
	}

	// Everything is signed; now build the verifying side. The revocation
	// certificate gpg made at key generation is imported only now, so the
	// revoked key's tag was signed while the key was good.
	pubA := h.cmd(h.signHome, nil, "gpg", "--armor", "--export", fprA, fprS)
	pubR := h.cmd(h.signHome, nil, "gpg", "--armor", "--export", fprR)
	revCert := readRevocation(t, filepath.Join(h.signHome, "openpgp-revocs.d", fprR+".rev"))
	trusted := [][]byte{[]byte(pubA), []byte(pubR), revCert, pgptest.Public(t, expKey), pgptest.Public(t, goodGo)}
	ring := NewKeyring("release")
	for i, b := range trusted {
		if err := ring.AddOpenPGP(b); err != nil {
			t.Fatalf("AddOpenPGP(trusted[%d]): %v", i, err)
		}
		h.cmd(h.vfyHome, b, "gpg", "--batch", "--import")
	}
	if err := ring.AddAllowedSigners([]byte(allowed)); err != nil {
		t.Fatal(err)
	}
	if err := ring.AddSSHRevoked([]byte(revoked)); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-62s %-7s %-7s %s\n", "case", "git", "modgate", "modgate error / signer")
	for _, c := range cases {
		gitOK, gitOut := h.gitVerify(c.ref)
		var raw []byte
		if c.raw != nil {
			raw = c.raw()
		} else {
			raw = catTag(c.ref)
		}
		var signer *Signer
		tag, err := Parse(raw)
		if err == nil {
			signer, err = ring.Verify(tag, now)
			// Again, when the keyring remembers the signature's
			// cryptography (memo.go): the same answer.
			if s2, err2 := ring.Verify(tag, now); fmt.Sprint(err2) != fmt.Sprint(err) || err == nil && !sameSigner(s2, signer) {
				t.Errorf("%s: second verification says %v %+v, first %v %+v", c.name, err2, s2, err, signer)
			}
		}
		modOK := err == nil
		detail := fmt.Sprint(err)
		if modOK {
			detail = fmt.Sprintf("%s %s (%s)", signer.Type, signer.Fingerprint, signer.Principal)
		}
		fmt.Fprintf(&table, "%-62s %-7s %-7s %s\n", c.name, verdict(gitOK), verdict(modOK), detail)
		if os.Getenv("TAGSIG_SHOW_GIT") != "" {
			t.Logf("%s: git verify-tag said:\n%s", c.name, gitTail(gitOut))
		}

		switch {
		case c.stricter == "" && gitOK != modOK:
			t.Errorf("%s: git %s, modgate %s (%v)\ngit output:\n%s", c.name, verdict(gitOK), verdict(modOK), err, gitOut)
		case c.stricter != "" && (!gitOK || modOK):
			t.Errorf("%s: marked stricter (%s) but git %s, modgate %s\ngit output:\n%s", c.name, c.stricter, verdict(gitOK), verdict(modOK), gitOut)
		}
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: modgate refused: %v", c.name, err)
			} else if c.principal != "" && signer.Principal != c.principal {
				t.Errorf("%s: principal %q, want %q", c.name, signer.Principal, c.principal)
			}
		} else if !errors.Is(err, c.want) {
			t.Errorf("%s: modgate error %v, want %v", c.name, err, c.want)
		}
	}
	t.Log(table.String())

	// The signer details for the cases where git prints them.
	checkSigner := func(ref, typ, fpr, primary string) {
		t.Helper()
		tag, err := Parse(catTag(ref))
		if err != nil {
			t.Fatal(err)
		}
		s, err := ring.Verify(tag, now)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if s.Type != typ || s.Fingerprint != fpr || s.PrimaryFingerprint != primary || s.KeyName != "release" {
			t.Errorf("%s: signer %+v, want %s %s primary %s", ref, s, typ, fpr, primary)
		}
		_, out := h.gitVerify(ref)
		if !strings.Contains(strings.ReplaceAll(out, " ", ""), fpr) && !strings.Contains(out, fpr) {
			t.Errorf("%s: git output does not mention %s:\n%s", ref, fpr, out)
		}
	}
	checkSigner("v1.0.0", "openpgp", fprA, fprA)
	checkSigner("v-subkey", "openpgp", subS, fprS)
	goodFP := strings.TrimSpace(h.cmd(h.signHome, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", sk["good"].path+".pub"))
	checkSigner("v2.0.0", "ssh", strings.Fields(goodFP)[1], strings.Fields(goodFP)[1])

	if len(cases) < 20 {
		t.Errorf("only %d agreement cases", len(cases))
	}
	t.Logf("%d cases in %v", len(cases), time.Since(start).Round(time.Millisecond))
}

// gitTail drops the tag object git verify-tag -v echoes, keeping its verdict.
func gitTail(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "gpg:") || strings.Contains(l, "signature") || strings.Contains(l, "error") ||
			strings.Contains(l, "Good") || strings.Contains(l, "principal") || strings.Contains(l, "key") {
			keep = append(keep, "\t"+l)
		}
	}
	return strings.Join(keep, "\n")
}

func verdict(ok bool) string {
	if ok {
		return "accept"
	}
	return "refuse"
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// readRevocation turns gpg's pre-made revocation certificate into an
// importable block: gpg prefixes the BEGIN line with ':' to stop accidental
// imports.
func readRevocation(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(":-----BEGIN PGP PUBLIC KEY BLOCK-----"))
	if i < 0 {
		t.Fatalf("%s: no revocation block", path)
	}
	return regexp.MustCompile(`(?m)^:`).ReplaceAll(b[i:], nil)
}

// TestExtendedExpiry: a tag signed while its OpenPGP key was valid fails
// once the key has expired (as git verify-tag does), and verifies again
// once the key's owner extends it with gpg and the keyring is read again
// from the new export: what an operator does to keep a release key's
// versions good.
func TestExtendedExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs gpg; skipped in -short mode")
	}
	h := newHarness(t)
	created := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Second)
	faked := func(at time.Time) string { return at.Format("20060102T150405") + "!" }
	gpg := func(stdin []byte, at time.Time, args ...string) string {
		base := []string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}
		if !at.IsZero() {
			base = append(base, "--faked-system-time", faked(at))
		}
		return h.cmd(h.signHome, stdin, "gpg", append(base, args...)...)
	}
	const uid = "Expiring Signer <expiring@example.com>"
	gpg(nil, created, "--quick-gen-key", uid, "ed25519", "sign", "1d")
	fpr := h.fingerprints(uid)[0]
	signedAt := created.Add(time.Hour)
	payload := tagPayload(h.commits[1], "v1.0.0", uid, signedAt, "release\n")
	tag, err := Parse(append(payload, gpg(payload, signedAt, "--armor", "--detach-sign", "-u", fpr+"!")...))
	if err != nil {
		t.Fatal(err)
	}
	verify := func() error {
		ring := NewKeyring("release")
		if err := ring.AddOpenPGP([]byte(gpg(nil, time.Time{}, "--armor", "--export", fpr))); err != nil {
			t.Fatal(err)
		}
		_, err := ring.Verify(tag, time.Now())
		return err
	}
	if err := verify(); !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("expired key: %v, want ErrKeyExpired", err)
	}
	gpg(nil, time.Time{}, "--quick-set-expire", fpr, "1y")
	if err := verify(); err != nil {
		t.Fatalf("after gpg --quick-set-expire: %v", err)
	}
}

// sameSigner compares what two Signers say, not their Validity (made anew
// by each verification).
func sameSigner(a, b *Signer) bool {
	x, y := *a, *b
	x.validity, y.validity = Validity{}, Validity{}
	return x == y
}
