package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNormalizeRepo(t *testing.T) {
	abs, _ := filepath.Abs("x/../repo")
	for _, tc := range []struct{ in, want, err string }{
		{in: "https://git.example.com/a/b.git", want: "https://git.example.com/a/b.git"},
		{in: "https://git.example.com//a/./b/", want: "https://git.example.com/a/b"},
		{in: "ssh://git@git.example.com/a", want: "ssh://git@git.example.com/a"},
		{in: "git@git.example.com:a/b.git", want: "git@git.example.com:a/b.git"},
		{in: "/srv/git/a/../b", want: "/srv/git/b"},
		{in: "./x/../repo", want: abs},
		{in: "", err: "empty repository"},
		{in: "-oProxyCommand=x", err: "starts with a dash"},
		{in: "--upload-pack=touch /tmp/x", err: "starts with a dash"},
		{in: "ext::sh -c touch% /tmp/pwned", err: "spaces or control characters"},
		{in: "ext::sh", err: "transport helper"},
		{in: "fd::17", err: "transport helper"},
		{in: "http://git.example.com/a", err: `scheme "http" not allowed`},
		{in: "file:///srv/git/a", err: `scheme "file" not allowed`},
		{in: "https://u:secret@git.example.com/a", err: "credentials in URLs are not allowed"},
		{in: "https://git.example.com/a?x=1", err: "query or fragment"},
		{in: "ssh://-oProxyCommand=x/a", err: "bad host"},
		{in: "-host:a", err: "starts with a dash"},
		{in: "git@-oProxyCommand=x:a", err: "bad host"},
		{in: "https://git.example.com/a\nb", err: "control characters"},
	} {
		got, err := NormalizeRepo(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("NormalizeRepo(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("NormalizeRepo(%q) error leaks the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizeRepo(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "k.asc")
	os.WriteFile(key, []byte("key"), 0o644)
	secret := filepath.Join(dir, "sumdb.key")
	os.WriteFile(secret, []byte("PRIVATE+KEY+x"), 0o600)
	for _, tc := range []struct{ yaml, err string }{
		{yaml: "", err: ""},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: [a.example/x]\n", err: ""},
		{yaml: "repositories:\n  - modules: [a.example/x]\n", err: "repositories[0].url: required"},
		{yaml: "repositories:\n  - url: https://g.example/a\n", err: "repositories[0].modules: required"},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: ['a,b']\n", err: "with a comma"},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: ['a//b']\n", err: "empty path element"},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: ['a/[']\n", err: "syntax error in pattern"},
		{yaml: "repositories:\n  - url: https://g.example/[\n    modules: [a]\n", err: "bad pattern"},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: [a.example]\n    root: a.example/mono\n", err: ""},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: [a.example/x]\n    root: a.example/mono\n", err: `repositories[0].root: "a.example/mono" is not a path the entry's modules a.example/x allow`},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: [a.example]\n    root: a.example/mono/v2\n", err: "ends in the major version suffix /v2: give a.example/mono"},
		{yaml: "repositories:\n  - url: https://g.example/a\n    modules: [a.example]\n    root: a.example/m*\n", err: "repositories[0].root: \"a.example/m*\": malformed module path"},
		{yaml: "repositories:\n  - url: https://g.example/*\n    modules: [a.example/*]\n    root: a.example/mono\n", err: "repositories[0].root: not with a wildcard url"},
		{yaml: "signers:\n  - modules: [a]\n    openpgp_keys: [" + key + "]\n", err: "signers[0].name: required"},
		{yaml: "signers:\n  - name: a\n    openpgp_keys: [" + key + "]\n", err: "signers[0].modules: required"},
		{yaml: "signers:\n  - name: a\n    modules: [a]\n", err: "signers[0]: needs openpgp_keys or ssh_allowed_signers"},
		{yaml: "signers:\n  - name: a\n    modules: [a]\n    openpgp_keys: [" + key + "]\n  - name: a\n    modules: [a]\n    openpgp_keys: [" + key + "]\n", err: `signers[1].name: "a" is used twice`},
		{yaml: "signers:\n  - name: a\n    modules: [a]\n    ssh_allowed_signers: " + dir + "\n", err: "not a regular file"},
		{yaml: "git:\n  timeout: -1s\n", err: "git.timeout: must not be negative"},
		{yaml: "checksum_db:\n  key_file: " + secret + "\n", err: ""},
		{yaml: "checksum_db:\n  key_file: " + key + "\n", err: "checksum_db.key_file: " + key + ": permissions 0644 are too open"},
		{yaml: "checksum_db:\n  key_file: " + secret + "\n  key_env: K\n", err: "key_file and key_env exclude each other"},
		{yaml: "server:\n  tls_cert: " + key + "\n", err: "tls_cert and tls_key go together"},
		{yaml: "server:\n  tls_cert: " + key + "\n  tls_key: " + key + "\n", err: "server.tls_key: " + key + ": permissions 0644 are too open"},
		{yaml: "server:\n  tls_cert: " + key + "\n  tls_key: " + secret + "\n  client_ca: " + key + "\n", err: ""},
		{yaml: "server:\n  client_ca: " + key + "\n", err: "server.client_ca: needs tls_cert and tls_key"},
		{yaml: "nats:\n  url: http://x\n", err: "nats.url"},
		{yaml: "nats:\n  url: nats://n1.example:4222\n", err: ""},
		{yaml: "nats:\n  workers: -1\n", err: "must not be negative"},
		{yaml: "webhooks:\n  github:\n    secret_file: " + key + "\n", err: "webhooks.github.secret_file: " + key + ": permissions 0644 are too open"},
		{yaml: "webhooks:\n  gitea:\n    secret_file: " + secret + "\n    secret_env: X\n", err: "webhooks.gitea: secret_file and secret_env exclude each other"},
		{yaml: "public_sumdb:\n  gosumdb: off\n", err: "public_sumdb.gosumdb: \"off\" would leave public dependencies unverified"},
	} {
		c, err := Parse([]byte(tc.yaml))
		if err == nil {
			err = c.WithDefaults().Validate()
		}
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("config\n%s\ngot error %v, want %q", tc.yaml, err, tc.err)
		}
	}
}

func TestParseStrict(t *testing.T) {
	for _, tc := range []struct{ yaml, err string }{
		{"repositorie: []\n", "line 1: field repositorie not found"},
		{"server:\n  listen: a\n  listen: b\n", `mapping key "listen" already defined`},
		{"git:\n  timeout: soon\n", "cannot unmarshal"},
		{"a: 1\n---\nb: 2\n", "field a not found"},
		{"data_dir: x\n---\ndata_dir: y\n", "more than one YAML document"},
	} {
		if _, err := Parse([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Parse(%q) error %v, want %q", tc.yaml, err, tc.err)
		}
	}
}

// The example in examples/ is the README's reference: it must parse
// strictly, and validate once its key files exist.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../examples/modgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "keys"), 0o755)
	for _, k := range []string{"release-team.asc", "allowed_signers", "revoked_keys", "tools_allowed_signers"} {
		os.WriteFile(filepath.Join(dir, "keys", k), nil, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "keys", "sumdb.key"), nil, 0o600)
	name := filepath.Join(dir, "modgate.yaml")
	os.WriteFile(name, data, 0o644)
	c, err := Load(name)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Dir != filepath.Join(dir, "data", "store") || c.Server.Listen != "127.0.0.1:8080" {
		t.Errorf("defaults: %+v", c)
	}
	if r := c.RepositoryFor("https://git.corp.example/platform/api"); r == nil || !MatchModule(r.Modules, "corp.example/platform/api") {
		t.Errorf("platform repository not matched: %+v", r)
	}
	if r := c.RepositoryFor("https://git.corp.example/platform/api/sub"); r != nil {
		t.Errorf("pattern crossed a path element: %+v", r)
	}
	if r := c.RepositoryFor("/srv/git/hello"); r == nil || MatchModule(r.Modules, "corp.example/other") {
		t.Errorf("local repository: %+v", r)
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("../examples/modgate.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("repositories:\n  - url: https://g.example/a\n    modules: [a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		_ = c.WithDefaults().Validate()
		for _, r := range c.Repositories {
			NormalizeRepo(r.URL)
		}
	})
}

func FuzzNormalizeRepo(f *testing.F) {
	for _, s := range []string{"https://g.example/a", "git@g:a", "/a/b", "ext::x", "-x", "ssh://h/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := NormalizeRepo(s)
		if err != nil {
			return
		}
		if strings.HasPrefix(n, "-") || strings.Contains(n, "::") {
			t.Fatalf("NormalizeRepo(%q) = %q: git would read it as an option or helper", s, n)
		}
		if n2, err := NormalizeRepo(n); err != nil || n2 != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, n, n2, err)
		}
	})
}

// TestModulesFor: the "*" elements of a wildcard repository entry bind its
// module patterns, so each repository it covers publishes only its own
// modules.
func TestModulesFor(t *testing.T) {
	r := &Repository{URL: "https://git.corp.example/*/*", Modules: []string{"corp.example/*/*", "corp.example/*/*/v2"}}
	for repo, want := range map[string]string{
		"https://git.corp.example/platform/api":     "corp.example/platform/api,corp.example/platform/api/v2",
		"https://git.corp.example/platform/api.git": "corp.example/platform/api,corp.example/platform/api/v2",
		"https://git.corp.example/a.b/c~d_e-f":      "corp.example/a.b/c~d_e-f,corp.example/a.b/c~d_e-f/v2",
	} {
		got, err := r.ModulesFor(repo)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ModulesFor(%s) = %q, %v, want %s", repo, got, err, want)
		}
		if !MatchModule(got, "corp.example/platform/api/sub") && strings.Contains(repo, "platform/api") {
			t.Errorf("%s may not publish a module below its own", repo)
		}
		if MatchModule(got, "corp.example/platform/web") {
			t.Errorf("%s may publish another repository's module", repo)
		}
	}
	for _, repo := range []string{
		"https://git.corp.example/platform/x*",   // would widen the pattern
		"https://git.corp.example/platform/x[a]", // so would a class
		"https://git.corp.example/platform/.git",
		"https://git.corp.example/platform",
	} {
		if got, err := r.ModulesFor(repo); err == nil {
			t.Errorf("ModulesFor(%s) = %q, want an error", repo, got)
		}
	}
	literal := &Repository{URL: "/srv/git/hello", Modules: []string{"corp.example/hello", "corp.example/x/*"}}
	if got, err := literal.ModulesFor("/srv/git/hello"); err != nil || strings.Join(got, ",") != "corp.example/hello,corp.example/x/*" {
		t.Errorf("literal entry: %q, %v", got, err)
	}

	for _, tc := range []struct {
		url     string
		modules []string
		want    string
	}{
		{"https://git.corp.example/platform/*", []string{"corp.example/platform"}, `has 0 "*" elements, url`},
		{"https://git.corp.example/platform/*", []string{"corp.example/*/*"}, `has 2 "*" elements`},
		{"https://git.corp.example/platform/api-*", []string{"corp.example/*"}, "a wildcard must be a whole path element"},
		{"https://git.corp.example/platform/?", []string{"corp.example/*"}, "a wildcard must be a whole path element"},
		{"https://git.corp.example/platform/*", []string{"corp.example/api-*"}, "with a wildcard url"},
	} {
		err := checkBinding(Repository{URL: tc.url, Modules: tc.modules})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("checkBinding(%s, %q) = %v, want %q", tc.url, tc.modules, err, tc.want)
		}
	}
}

// FuzzModulesFor: whatever a repository's name, what it binds is a literal
// module path element: the bound pattern covers that path and what is
// below it, nothing beside it.
func FuzzModulesFor(f *testing.F) {
	for _, s := range []string{"api", "api.git", "x*", "a.b", "..", "", "a[b]", "v2"} {
		f.Add(s)
	}
	r := &Repository{URL: "https://git.corp.example/platform/*", Modules: []string{"corp.example/platform/*"}}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := r.ModulesFor("https://git.corp.example/platform/" + name)
		if err != nil {
			return
		}
		elem := strings.TrimPrefix(got[0], "corp.example/platform/")
		if len(got) != 1 || elem == got[0] || strings.ContainsAny(elem, "*?[\\/,") || elem != strings.TrimSuffix(name, ".git") {
			t.Fatalf("%q bound %q", name, got)
		}
		if MatchModule(got, "corp.example/platform/"+elem+"x") || !MatchModule(got, "corp.example/platform/"+elem+"/sub") {
			t.Fatalf("%q: pattern %q covers the wrong paths", name, got)
		}
	})
}

// TestWebhookSecrets: one secret per non-blank line (a rotation lists two),
// read afresh at each call; a file others may read is refused as at
// start-up, and the error never holds a secret.
func TestWebhookSecrets(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "github.secret")
	if err := os.WriteFile(f, []byte("\n  new-secret-0123456789\r\n\nold-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := WebhookSecret{SecretFile: f}
	got, err := w.Secrets()
	if err != nil || len(got) != 2 || string(got[0]) != "new-secret-0123456789" || string(got[1]) != "old-secret-0123456789" {
		t.Fatalf("Secrets() = %q, %v", got, err)
	}
	os.WriteFile(f, []byte("new-secret-0123456789\n"), 0o600)
	if got, err := w.Secrets(); err != nil || len(got) != 1 {
		t.Fatalf("after the rotation: %q, %v", got, err)
	}
	os.Chmod(f, 0o640)
	if _, err := w.Secrets(); err == nil || !strings.Contains(err.Error(), "permissions 0640 are too open") || strings.Contains(err.Error(), "new-secret") {
		t.Errorf("group-readable file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "blank"), []byte(" \n\n"), 0o600)
	if _, err := (WebhookSecret{SecretFile: filepath.Join(dir, "blank")}).Secrets(); err == nil {
		t.Error("a blank file is a secret")
	}
	t.Setenv("MODGATE_TEST_HOOK", "env-secret-0123456789")
	if got, err := (WebhookSecret{SecretEnv: "MODGATE_TEST_HOOK"}).Secrets(); err != nil || len(got) != 1 || string(got[0]) != "env-secret-0123456789" {
		t.Errorf("from the environment: %q, %v", got, err)
	}
}

// TestExampleShowsEveryField holds examples/modgate.yaml to its word:
// every field of Config appears in it, set or commented out, under its
// parent's key (a type used in several places, like a webhook provider's
// secret, under one of them).
func TestExampleShowsEveryField(t *testing.T) {
	data, err := os.ReadFile("../examples/modgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A key, commented out ("# " then its indentation) or not, maybe a
	// list item's first ("- ").
	keyRE := regexp.MustCompile(`^( *)(?:# ( *))?(- +)?([a-z_]+):`)
	shown := map[string]bool{}
	type parent struct {
		indent int
		path   string
	}
	var parents []parent
	for _, line := range strings.Split(string(data), "\n") {
		m := keyRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		indent := len(m[1]) + len(m[2]) + len(m[3])
		for len(parents) > 0 && parents[len(parents)-1].indent >= indent {
			parents = parents[:len(parents)-1]
		}
		path := m[4]
		if len(parents) > 0 {
			path = parents[len(parents)-1].path + "." + m[4]
		}
		shown[path] = true
		parents = append(parents, parent{indent, path})
	}
	// For each struct type, each field's paths; it must be shown at one.
	type field struct {
		typ  reflect.Type
		name string
	}
	paths := map[field][]string{}
	var order []field
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() {
			return
		}
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			k := field{typ, name}
			if paths[k] == nil {
				order = append(order, k)
			}
			paths[k] = append(paths[k], path)
			walk(path, f.Type)
		}
	}
	walk("", reflect.TypeFor[Config]())
	for _, k := range order {
		if !slices.ContainsFunc(paths[k], func(p string) bool { return shown[p] }) {
			t.Errorf("examples/modgate.yaml does not show %s", strings.Join(paths[k], " or "))
		}
	}
	if len(order) < 50 {
		t.Errorf("only %d fields found: the walk is broken", len(order))
	}
	t.Logf("%d fields, each shown", len(order))
}
