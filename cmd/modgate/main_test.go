package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modgate/modgate/internal/testrepo"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"modgate": main,
	})
}

// TestScripts runs every scenario in testdata/script: real git, real gpg and
// ssh-keygen signatures, the real go command against `modgate serve`.
func TestScripts(t *testing.T) {
	testrepo.Require(t)
	keys := testrepo.NewKeys(t, t.TempDir())
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			return setupScript(env, keys)
		},
		Condition: func(cond string) (bool, error) {
			if cond == "publicproxy" {
				return publicProxyReachable(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitfor":       cmdWaitFor,
			"envfile":       cmdEnvFile,
			"flipbyte":      cmdFlipByte,
			"tamperzip":     cmdTamperZip,
			"githost":       cmdGitHost,
			"expand":        cmdExpand,
			"postwebhook":   cmdPostWebhook,
			"httpget":       cmdHTTPGet,
			"httpstatus":    cmdHTTPStatus,
			"concurrentget": cmdConcurrentGet,
			"upstreamproxy": cmdUpstreamProxy,
			"upstreamcount": cmdUpstreamCount,
			"waitfile":      cmdWaitFile,
		},
	})
}

// setupScript gives each script copies of the keys under $WORK/keys, a git
// configuration that signs with them, an isolated go environment, and a
// free port in $PORT for `modgate serve`.
func setupScript(env *testscript.Env, k *testrepo.Keys) error {
	kd := filepath.Join(env.WorkDir, "keys")
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return err
	}
	for _, f := range []string{k.GPGPublic, k.AllowedSigners, k.SSHKey, k.SSHKey + ".pub"} {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(kd, filepath.Base(f)), data, 0o600); err != nil {
			return err
		}
	}
	gitconfig := filepath.Join(env.WorkDir, ".gitconfig")
	err := os.WriteFile(gitconfig, []byte(fmt.Sprintf(`[user]
	name = Rel Eng
	email = releng@example.com
	signingkey = %s
[init]
	defaultBranch = main
[tag]
	gpgSign = false
`, k.GPGFingerprint)), 0o644)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	natsPort, err := freePort()
	if err != nil {
		return err
	}
	realProxy, realSumDB := realGoEnv()
	env.Setenv("REALGOPROXY", realProxy)
	env.Setenv("REALGOSUMDB", realSumDB)
	home := filepath.Join(env.WorkDir, "home")
	for _, kv := range [][2]string{
		{"HOME", home},
		{"GNUPGHOME", k.GNUPGHome},
		{"GIT_CONFIG_GLOBAL", gitconfig},
		{"GIT_CONFIG_NOSYSTEM", "1"},
		{"SSHKEY", filepath.Join(kd, filepath.Base(k.SSHKey))},
		{"PORT", fmt.Sprint(port)},
		{"NATSPORT", fmt.Sprint(natsPort)},
		{"GOPATH", filepath.Join(env.WorkDir, "gopath")},
		{"GOMODCACHE", filepath.Join(env.WorkDir, "modcache")},
		{"GOCACHE", goCache()},
		{"GOFLAGS", "-modcacherw"},
		{"GOTOOLCHAIN", "local"},
		{"GOPROXY", "off"},
		{"GOSUMDB", "off"},
		{"GONOSUMDB", ""},
		{"GOPRIVATE", ""},
		{"GONOPROXY", ""},
	} {
		env.Setenv(kv[0], kv[1])
	}
	return os.MkdirAll(home, 0o755)
}

var (
	goEnvOnce            sync.Once
	goProxyEnv, goSumEnv string
	proxyReachable       bool
)

// realGoEnv is the GOPROXY and GOSUMDB of the machine's go command, before
// the scripts turn them off.
func realGoEnv() (string, string) {
	goEnvOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOPROXY", "GOSUMDB").Output()
		if f := strings.Fields(string(out)); err == nil && len(f) == 2 {
			goProxyEnv, goSumEnv = f[0], f[1]
		}
		first, _, _ := strings.Cut(goProxyEnv, ",")
		first, _, _ = strings.Cut(first, "|")
		if strings.HasPrefix(first, "http") {
			c := http.Client{Timeout: 5 * time.Second}
			if resp, err := c.Get(strings.TrimSuffix(first, "/") + "/github.com/stretchr/testify/@v/v1.9.0.info"); err == nil {
				resp.Body.Close()
				proxyReachable = resp.StatusCode == 200
			}
		}
	})
	return goProxyEnv, goSumEnv
}

// publicProxyReachable: the [publicproxy] condition of scripts that need
// the public module proxy (they skip, saying so, without it).
func publicProxyReachable() bool {
	realGoEnv()
	return proxyReachable
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// goCache shares the build cache between scripts: building the test
// program from scratch in every script would dominate the run time.
func goCache() string {
	if c := os.Getenv("GOCACHE"); c != "" {
		return c
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "modgate-gocache")
	}
	return filepath.Join(dir, "go-build")
}

// waitfor URL: wait up to 20 s for URL to answer 200.
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfor URL")
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if neg {
					ts.Fatalf("%s answered 200", args[0])
				}
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !neg {
		ts.Fatalf("%s did not answer 200 within 20s", args[0])
	}
}

// envfile VAR FILE: set VAR to the trimmed contents of FILE (a verifier
// key that `modgate keys generate` wrote, say).
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// flipbyte FILE: invert the bits of the byte in the middle of FILE, as
// storage rot or a tamperer would.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: flipbyte FILE")
	}
	name := ts.MkAbs(args[0])
	data, err := os.ReadFile(name)
	ts.Check(err)
	data[len(data)/2] ^= 0xff
	ts.Check(os.Chmod(name, 0o644))
	ts.Check(os.WriteFile(name, data, 0o644))
}

// tamperzip FILE: rewrite a module zip so that it is still a valid zip
// (CRCs right) but one .go file has a line added: what someone with write
// access to the store would make, and only a checksum database catches.
func cmdTamperZip(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tamperzip FILE")
	}
	name := ts.MkAbs(args[0])
	zr, err := zip.OpenReader(name)
	ts.Check(err)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	tampered := false
	for _, f := range zr.File {
		rc, err := f.Open()
		ts.Check(err)
		data, err := io.ReadAll(rc)
		ts.Check(err)
		rc.Close()
		if !tampered && strings.HasSuffix(f.Name, ".go") {
			data = append(data, "\n// tampered\n"...)
			tampered = true
		}
		w, err := zw.Create(f.Name)
		ts.Check(err)
		_, err = w.Write(data)
		ts.Check(err)
	}
	zr.Close()
	ts.Check(zw.Close())
	if !tampered {
		ts.Fatalf("no .go file in %s", name)
	}
	ts.Check(os.Chmod(name, 0o644))
	ts.Check(os.WriteFile(name, buf.Bytes(), 0o644))
}
