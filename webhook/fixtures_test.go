package webhook

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the signatures in testdata/*/*.headers and the .golden files")

// The secrets the fixtures are signed with. Each provider's differs, so that
// a leak test can tell them apart.
var testSecrets = map[Provider][]byte{
	GitHub: []byte("test-github-webhook-secret-7f3a9c"),
	GitLab: []byte("test-gitlab-webhook-token-c05e6d"),
	Gitea:  []byte("test-gitea-webhook-secret-2b8d41"),
}

// fixture is one recorded delivery: testdata/<provider>/<name>.json (or
// .form for a form-encoded body) and <name>.headers.
type fixture struct {
	provider Provider
	name     string
	header   http.Header
	body     []byte
	dir      string
}

func (f fixture) String() string { return string(f.provider) + "/" + f.name }

// clone returns a copy of the fixture's headers, to modify.
func (f fixture) clone() http.Header { return f.header.Clone() }

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	var out []fixture
	for _, p := range Providers {
		dir := filepath.Join("testdata", string(p))
		names, err := filepath.Glob(filepath.Join(dir, "*.headers"))
		if err != nil || len(names) == 0 {
			t.Fatalf("no fixtures in %s: %v", dir, err)
		}
		for _, hname := range names {
			base := strings.TrimSuffix(hname, ".headers")
			body, err := os.ReadFile(base + ".json")
			if os.IsNotExist(err) {
				body, err = os.ReadFile(base + ".form")
			}
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				resign(t, hname, testSecrets[p], body)
			}
			h, err := readHeaders(hname)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fixture{provider: p, name: filepath.Base(base), header: h, body: body, dir: dir})
		}
	}
	return out
}

func findFixture(t testing.TB, p Provider, name string) fixture {
	t.Helper()
	for _, f := range loadFixtures(t) {
		if f.provider == p && f.name == name {
			return f
		}
	}
	t.Fatalf("no fixture %s/%s", p, name)
	return fixture{}
}

// readHeaders reads "Name: value" lines; blank lines and # comments are
// skipped.
func readHeaders(name string) (http.Header, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			return nil, &os.PathError{Op: "parse", Path: name, Err: os.ErrInvalid}
		}
		h.Add(k, v)
	}
	return h, sc.Err()
}

// resign rewrites the signature headers of a fixture for its body, as the
// provider would compute them.
func resign(t testing.TB, name string, secret, body []byte) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s256 := Sign(secret, body)
	m := hmac.New(sha1.New, secret)
	m.Write(body)
	s1 := hex.EncodeToString(m.Sum(nil))
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		k, _, _ := strings.Cut(line, ": ")
		switch http.CanonicalHeaderKey(k) {
		case "X-Hub-Signature-256":
			lines[i] = k + ": sha256=" + s256
		case "X-Hub-Signature":
			lines[i] = k + ": sha1=" + s1
		case "X-Gitea-Signature", "X-Gogs-Signature":
			lines[i] = k + ": " + s256
		}
	}
	if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with testdata/<provider>/<name>.golden.
func golden(t *testing.T, f fixture, got []byte) {
	t.Helper()
	name := filepath.Join(f.dir, f.name+".golden")
	if *update {
		if err := os.WriteFile(name, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: Parse result differs from %s\ngot:\n%s\nwant:\n%s", f, name, got, want)
	}
}

// TestParseFixtures parses every fixture and compares the event, or the
// error, with its golden file.
func TestParseFixtures(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.String(), func(t *testing.T) {
			if err := Verify(f.provider, f.header, f.body, testSecrets[f.provider]); err != nil {
				t.Fatalf("fixture signature does not verify (run go test -update): %v", err)
			}
			ev, err := Parse(f.provider, f.header, f.body)
			var out struct {
				Event *Event `json:"event,omitempty"`
				Error string `json:"error,omitempty"`
			}
			out.Event = ev
			if err != nil {
				out.Error = err.Error()
			}
			data, jerr := json.MarshalIndent(out, "", "  ")
			if jerr != nil {
				t.Fatal(jerr)
			}
			golden(t, f, append(data, '\n'))
		})
	}
}
