package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/store/storetest"
	"golang.org/x/mod/module"
)

// goCommand returns a go command that uses only the given proxy, with its
// own module cache, and no checksum database for example.com modules.
func goCommand(t *testing.T, proxy string, args ...string) *exec.Cmd {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	tmp := t.TempDir()
	cmd := exec.Command(gobin, args...)
	cmd.Dir = tmp
	cmd.Env = append(cmd.Environ(),
		"GOPROXY="+proxy,
		"GONOSUMDB=example.com/hello,example.com/Azure/hello",
		"GOPRIVATE=", "GONOPROXY=", "GOINSECURE=",
		"GOFLAGS=-mod=mod -modcacherw",
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOPATH="+filepath.Join(tmp, "gopath"),
		"GOTOOLCHAIN=local", "GOWORK=off", "GOENV=off",
	)
	return cmd
}

// TestGoModDownloadFileProxy: the real go command reads the store as a
// GOPROXY=file:// proxy, and agrees with the store about the hashes.
func TestGoModDownloadFileProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	d := openStore(t)
	ms := []module.Version{hello, {Path: "example.com/Azure/hello", Version: "v1.1.0-RC1"}}
	for _, m := range ms {
		v := newVersion(t, m)
		publish(t, d, v)

		cmd := goCommand(t, "file://"+filepath.ToSlash(d.Root()), "mod", "download", "-json", m.String())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go mod download %s: %v\n%s%s", m, err, out, stderr.Bytes())
		}
		var got struct{ Path, Version, Sum, GoModSum, Error string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("go mod download -json: %v\n%s", err, out)
		}
		if got.Error != "" || got.Path != m.Path || got.Version != m.Version {
			t.Fatalf("go mod download = %+v", got)
		}
		if got.Sum != v.ZipHash {
			t.Errorf("go command Sum = %s, store ZipHash = %s", got.Sum, v.ZipHash)
		}
		if want := storetest.ModHash(t, v.Mod); got.GoModSum != want {
			t.Errorf("go command GoModSum = %s, want %s", got.GoModSum, want)
		}
	}
}

// TestGoCommandIgnoresUnpublished: files of an interrupted publish, with no
// .info, are not a version to the go command either, even one that go.mod
// already requires (it reads .info before .mod and .zip).
func TestGoCommandIgnoresUnpublished(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	d := openStore(t)
	store.SetTestHookAfter(d, func(step string) error {
		if step == "doc"+store.DocSPDX {
			return errCrash
		}
		return nil
	})
	v := newVersion(t, hello)
	v.Docs = map[string][]byte{store.DocSPDX: []byte("{}")}
	if _, err := d.Publish(context.Background(), v); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	cmd := goCommand(t, "file://"+filepath.ToSlash(d.Root()), "mod", "download", "-json")
	gomod := "module test\n\ngo 1.21\n\nrequire example.com/hello v1.0.0\n"
	if err := os.WriteFile(filepath.Join(cmd.Dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("v1.0.0.info")) {
		t.Errorf("go mod download of an unpublished version: %v\n%s", err, out)
	}
}
