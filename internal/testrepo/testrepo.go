// Package testrepo makes real git repositories with real signed tags for
// tests: keys from the real gpg and ssh-keygen, tags from the real
// `git tag -s`. Nothing here is a mock.
package testrepo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Keys is a gpg home with one signing key and an ssh key pair, plus the
// files modgate's configuration points at.
type Keys struct {
	Dir            string // everything lives here
	GNUPGHome      string
	GPGFingerprint string
	GPGPublic      string // armored public key file
	SSHKey         string // private key file (public key is SSHKey+".pub")
	AllowedSigners string // allowed_signers with the ssh key for releng@example.com
}

// Require skips the test when git, gpg or ssh-keygen is missing.
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"git", "gpg", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: this test runs the real tool", tool)
		}
	}
}

// NewKeys generates an ed25519 gpg key and an ed25519 ssh key under dir.
func NewKeys(t testing.TB, dir string) *Keys {
	t.Helper()
	Require(t)
	k := &Keys{Dir: dir, GNUPGHome: filepath.Join(dir, "gnupg")}
	must(t, os.MkdirAll(k.GNUPGHome, 0o700))
	run(t, dir, k.env(), "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "Rel Eng <releng@example.com>", "ed25519", "sign", "never")
	out := run(t, dir, k.env(), "gpg", "--batch", "--with-colons", "--list-keys", "releng@example.com")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			k.GPGFingerprint = f[9]
			break
		}
	}
	k.GPGPublic = filepath.Join(dir, "releng.asc")
	must(t, os.WriteFile(k.GPGPublic, []byte(run(t, dir, k.env(), "gpg", "--batch", "--armor", "--export", k.GPGFingerprint)), 0o644))

	k.SSHKey = filepath.Join(dir, "id_ed25519")
	run(t, dir, k.env(), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "releng", "-f", k.SSHKey)
	pub, err := os.ReadFile(k.SSHKey + ".pub")
	must(t, err)
	k.AllowedSigners = filepath.Join(dir, "allowed_signers")
	must(t, os.WriteFile(k.AllowedSigners, []byte(`releng@example.com namespaces="git" `+string(pub)), 0o644))
	return k
}

func (k *Keys) env() []string {
	return []string{"GNUPGHOME=" + k.GNUPGHome}
}

// Env is the environment under which git signs with these keys.
func (k *Keys) Env() []string {
	return append(k.env(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Rel Eng", "GIT_AUTHOR_EMAIL=releng@example.com",
		"GIT_COMMITTER_NAME=Rel Eng", "GIT_COMMITTER_EMAIL=releng@example.com",
	)
}

// Repo is a git repository with a work tree.
type Repo struct {
	Dir  string
	Keys *Keys
	t    testing.TB
}

// NewRepo makes an empty repository at dir.
func NewRepo(t testing.TB, k *Keys, dir string) *Repo {
	t.Helper()
	r := &Repo{Dir: dir, Keys: k, t: t}
	must(t, os.MkdirAll(dir, 0o755))
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git in the repository and returns its output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	return run(r.t, r.Dir, r.Keys.Env(), "git", args...)
}

// Write writes files (name → content) into the work tree.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		must(r.t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(r.t, os.WriteFile(p, []byte(content), 0o644))
	}
}

// Commit stages everything and commits; it returns the commit id.
func (r *Repo) Commit(msg string) string {
	r.t.Helper()
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return strings.TrimSpace(r.Git("rev-parse", "HEAD"))
}

// TagGPG makes a gpg-signed annotated tag with the real `git tag -s`.
func (r *Repo) TagGPG(name string) {
	r.t.Helper()
	r.Git("-c", "user.signingkey="+r.Keys.GPGFingerprint, "tag", "-s", "-m", "release "+name, name)
}

// TagSSH makes an ssh-signed annotated tag with the real `git tag -s`.
func (r *Repo) TagSSH(name string) {
	r.t.Helper()
	r.Git("-c", "gpg.format=ssh", "-c", "user.signingkey="+r.Keys.SSHKey, "tag", "-s", "-m", "release "+name, name)
}

// Module writes a minimal module with go.mod and one package at dir ("" for
// the root).
func (r *Repo) Module(dir, path string) {
	r.t.Helper()
	pkg := path[strings.LastIndex(path, "/")+1:]
	if strings.HasPrefix(pkg, "v") && len(pkg) > 1 && strings.Trim(pkg[1:], "0123456789") == "" {
		p := strings.TrimSuffix(path, "/"+pkg)
		pkg = p[strings.LastIndex(p, "/")+1:]
	}
	pkg = strings.NewReplacer("-", "", ".", "").Replace(pkg)
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	r.Write(map[string]string{
		prefix + "go.mod": "module " + path + "\n\ngo 1.21\n",
		prefix + pkg + ".go": fmt.Sprintf("// Package %s says hello.\npackage %s\n\n// Hello greets.\nfunc Hello() string { return %q }\n",
			pkg, pkg, "hello from "+path),
		prefix + "LICENSE": "MIT License\n",
	})
}

func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// MITLicense is an MIT license file, as a module root carries it.
const MITLicense = `MIT License

Copyright (c) 2026 Example

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
`
