package main

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modgate/modgate/webhook"
)

// githost DIR: serve the git repositories under DIR over HTTPS with the
// real `git http-backend` (smart HTTP, as a git host serves them), for the
// rest of the script. Sets $GITHOST to its base URL and GIT_SSL_CAINFO to
// its certificate, so git (and modgate's fetches) trust it.
func cmdGitHost(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: githost DIR")
	}
	root := ts.MkAbs(args[0])
	execPath, err := exec.Command("git", "--exec-path").Output()
	ts.Check(err)
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	srv := httptest.NewTLSServer(backend)
	ts.Defer(srv.Close)
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := ts.MkAbs("githost-ca.pem")
	ts.Check(os.WriteFile(caFile, cert, 0o644))
	ts.Setenv("GITHOST", srv.URL)
	ts.Setenv("GIT_SSL_CAINFO", caFile)
}

// expand SRC DST: copy SRC to DST with $VARIABLES expanded from the
// script's environment (configurations and payloads that name a port).
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: expand SRC DST")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(os.Expand(ts.ReadFile(args[0]), ts.Getenv)), 0o644))
}

// postwebhook PROVIDER URL PAYLOAD SECRETFILE DELIVERY [STATUS]: deliver
// PAYLOAD as the provider does (its event and delivery headers, its
// signature made with the secret), and check the HTTP status (default 202).
// A SECRETFILE of "-" sends a forged signature.
func cmdPostWebhook(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 5 || len(args) > 6 {
		ts.Fatalf("usage: postwebhook PROVIDER URL PAYLOAD SECRETFILE DELIVERY [STATUS]")
	}
	provider, url, body, delivery := args[0], args[1], []byte(ts.ReadFile(args[2])), args[4]
	secret := []byte("forged-secret-forged-secret")
	if args[3] != "-" {
		secret = bytes.TrimSpace([]byte(ts.ReadFile(args[3])))
	}
	want := 202
	if len(args) == 6 {
		fmt.Sscan(args[5], &want)
	}
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	ts.Check(err)
	req.Header.Set("Content-Type", "application/json")
	sig := webhook.Sign(secret, body)
	switch provider {
	case "github":
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", "sha256="+sig)
	case "gitea":
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Delivery", delivery)
		req.Header.Set("X-Gitea-Signature", sig)
	case "gitlab":
		req.Header.Set("X-Gitlab-Event", "Tag Push Hook")
		req.Header.Set("X-Gitlab-Event-UUID", delivery)
		req.Header.Set("X-Gitlab-Token", string(secret))
	default:
		ts.Fatalf("unknown provider %q", provider)
	}
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	ts.Logf("%s %d %s", provider, resp.StatusCode, out)
	fmt.Fprintf(ts.Stdout(), "%s\n", out)
	if resp.StatusCode != want {
		ts.Fatalf("status %d, want %d: %s", resp.StatusCode, want, out)
	}
}

// httpget URL: print the body of a GET of URL (status 200 required).
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: httpget URL")
	}
	resp, err := http.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ts.Check(err)
	if resp.StatusCode != 200 {
		ts.Fatalf("GET %s: %d %s", args[0], resp.StatusCode, body)
	}
	ts.Stdout().Write(body)
}
