package sumlog

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"
)

// memFile is a module file for modzip.Create.
type memFile struct {
	name string
	data []byte
}

func (f memFile) Path() string                { return f.name }
func (f memFile) Lstat() (fs.FileInfo, error) { return memInfo(f), nil }
func (f memFile) Open() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(f.data)), nil
}

type memInfo memFile

func (i memInfo) Name() string       { return path.Base(i.name) }
func (i memInfo) Size() int64        { return int64(len(i.data)) }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// proxyModule writes m into root in the GOPROXY layout, with source as its
// one Go file, and returns its go.sum record, computed from the files
// written, as modgate's publish step computes it.
func proxyModule(t *testing.T, root string, m module.Version, source string) []byte {
	t.Helper()
	gomod := []byte("module " + m.Path + "\n\ngo 1.21\n")
	var zip bytes.Buffer
	files := []modzip.File{memFile{"go.mod", gomod}, memFile{"x.go", []byte(source)}}
	if err := modzip.Create(&zip, m, files); err != nil {
		t.Fatal(err)
	}
	esc, err := module.EscapePath(m.Path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, filepath.FromSlash(esc), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	info := `{"Version":"` + m.Version + `","Time":"2025-01-02T03:04:05Z"}`
	for name, data := range map[string][]byte{
		m.Version + ".info": []byte(info),
		m.Version + ".mod":  gomod,
		m.Version + ".zip":  zip.Bytes(),
		"list":              []byte(m.Version + "\n"),
	} {
		writeFile(t, filepath.Join(dir, name), data)
	}
	zipHash, err := dirhash.HashZip(filepath.Join(dir, m.Version+".zip"), dirhash.Hash1)
	if err != nil {
		t.Fatal(err)
	}
	modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return []byte(m.Path + " " + m.Version + " " + zipHash + "\n" + m.Path + " " + m.Version + "/go.mod " + modHash + "\n")
}

// goModDownload runs the real go command against proxy, with modgate's key
// as the only GOSUMDB and no exemptions, so it must verify through the
// proxy's /sumdb/<name>/ endpoint.
func goModDownload(t *testing.T, proxy, vkey, gopath string, m module.Version) (stdout, stderr []byte, err error) {
	t.Helper()
	gobin, lerr := exec.LookPath("go")
	if lerr != nil {
		t.Skip("no go command:", lerr)
	}
	work := t.TempDir()
	cmd := exec.Command(gobin, "mod", "download", "-json", m.String())
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"GOPROXY="+proxy,
		"GOSUMDB="+vkey,
		"GONOSUMDB=", "GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOMODCACHE="+filepath.Join(work, "modcache"),
		"GOPATH="+gopath,
		"GOTOOLCHAIN=local", "GOFLAGS=-modcacherw", "GOWORK=off", "GOENV=off",
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// TestGoCommand: the go command downloads a private module through a
// GOPROXY that mounts the log's Handler at /sumdb/<name>/, verifies it
// against the log, and refuses a zip that does not match its record, and a
// version the log does not have.
func TestGoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	k := newTestKey(t, testName)
	l := openTestLog(t, t.TempDir(), k)
	root := t.TempDir()

	good := module.Version{Path: "corp.example/x", Version: "v1.0.0"}
	mustAppend(t, l, good, proxyModule(t, root, good, "package x\n"))
	// bad's record is of one zip; the proxy then serves another.
	bad := module.Version{Path: "corp.example/bad", Version: "v1.0.0"}
	mustAppend(t, l, bad, proxyModule(t, root, bad, "package bad\n"))
	proxyModule(t, root, bad, "package bad\n\nfunc Backdoor() {}\n")
	// unlisted is in the proxy, never admitted into the log.
	unlisted := module.Version{Path: "corp.example/unlisted", Version: "v1.0.0"}
	proxyModule(t, root, unlisted, "package unlisted\n")

	mux := http.NewServeMux()
	prefix := "/sumdb/" + testName
	mux.Handle(prefix+"/", http.StripPrefix(prefix, l.Handler()))
	mux.Handle("/", http.FileServer(http.Dir(root)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gopath := t.TempDir()

	t.Run("verified", func(t *testing.T) {
		out, stderr, err := goModDownload(t, srv.URL, k.vkey, gopath, good)
		if err != nil {
			t.Fatalf("go mod download: %v\n%s%s", err, out, stderr)
		}
		var got struct{ Path, Version, Sum, GoModSum, Error string }
		if err := json.Unmarshal(out, &got); err != nil || got.Error != "" {
			t.Fatalf("go mod download -json: %v\n%s", err, out)
		}
		_, rec, _ := l.Lookup(t.Context(), good)
		if zip, mod := recordHashes(rec); got.Sum != zip || got.GoModSum != mod {
			t.Errorf("go command hashes %s, %s; log has %q", got.Sum, got.GoModSum, rec)
		}
		// The go command verified the log's head and kept it.
		latest, err := os.ReadFile(filepath.Join(gopath, "pkg", "sumdb", testName, "latest"))
		if err != nil {
			t.Fatalf("the go command kept no tree head: %v", err)
		}
		n, err := note.Open(latest, note.VerifierList(k.verifier))
		if err != nil {
			t.Fatal(err)
		}
		tree, _ := tlog.ParseTree([]byte(n.Text))
		if head, _, _ := l.TreeHead(t.Context()); tree != head {
			t.Errorf("go command's head %v, log's %v", tree, head)
		}
	})

	t.Run("zip does not match record", func(t *testing.T) {
		out, stderr, err := goModDownload(t, srv.URL, k.vkey, gopath, bad)
		all := string(out) + string(stderr)
		if err == nil {
			t.Fatalf("go mod download of a zip that does not match the log succeeded:\n%s", all)
		}
		if !strings.Contains(all, "SECURITY ERROR") && !strings.Contains(all, "checksum mismatch") {
			t.Fatalf("go mod download failed without a checksum error: %v\n%s", err, all)
		}
		t.Logf("go command: SECURITY ERROR=%v, checksum mismatch=%v\n%s",
			strings.Contains(all, "SECURITY ERROR"), strings.Contains(all, "checksum mismatch"), all)
	})

	t.Run("not in log", func(t *testing.T) {
		out, stderr, err := goModDownload(t, srv.URL, k.vkey, gopath, unlisted)
		all := string(out) + string(stderr)
		if err == nil || !strings.Contains(all, "404") {
			t.Fatalf("go mod download of a version not in the log: %v\n%s", err, all)
		}
		t.Logf("go command:\n%s", all)
	})

	// A log rebuilt with the same key but another history: a go command
	// that saw the real log's head refuses it. This is why Open refuses to
	// serve records that do not extend latest.
	t.Run("forked log", func(t *testing.T) {
		forked := openTestLog(t, t.TempDir(), k)
		other := module.Version{Path: "corp.example/other", Version: "v1.0.0"}
		mustAppend(t, forked, other, proxyModule(t, root, other, "package other\n"))
		for _, m := range []module.Version{good, bad} {
			_, rec, _ := l.Lookup(t.Context(), m)
			mustAppend(t, forked, m, rec)
		}
		fmux := http.NewServeMux()
		fmux.Handle(prefix+"/", http.StripPrefix(prefix, forked.Handler()))
		fmux.Handle("/", http.FileServer(http.Dir(root)))
		fsrv := httptest.NewServer(fmux)
		defer fsrv.Close()
		out, stderr, err := goModDownload(t, fsrv.URL, k.vkey, gopath, good)
		all := string(out) + string(stderr)
		// The go command kept the real log's head (size 2); the forked
		// log's tile for that size does not hash to it. Either message
		// means the go command refused the fork.
		if err == nil || !strings.Contains(all, "inconsistent") && !strings.Contains(all, "SECURITY ERROR") {
			t.Fatalf("go mod download from a forked log: %v\n%s", err, all)
		}
		t.Logf("go command:\n%s", all)
	})
}
