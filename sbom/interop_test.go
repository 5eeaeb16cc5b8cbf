package sbom

// Interoperability with the real cosign and syft CLIs, offline.
//
// The CLIs come from $MODGATE_TOOLS, or from .ci/tools.sh when it has
// already built them into the user cache; otherwise these tests skip (CI
// runs .ci/tools.sh first). Each CLI runs with no network at all when
// `unshare -rn` works (a new, empty network namespace), and always with
// proxies pointing at a closed port, so a network access fails the test
// instead of passing slowly.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

const cosignModuleVersion = "v2.6.5"

// toolsDir returns the directory holding the real cosign and syft CLIs.
func toolsDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MODGATE_TOOLS"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no user cache directory (%v): set MODGATE_TOOLS to the directory of the cosign and syft CLIs", err)
	}
	bin := filepath.Join(cache, "modgate-tools", "cosign-"+cosignModuleVersion+"-syft-"+syftModuleVersion, "bin")
	for _, tool := range []string{"cosign", "syft"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			t.Skipf("the real cosign %s and syft %s CLIs are not built: run `bash .ci/tools.sh` once (several minutes; it prints their directory), or set MODGATE_TOOLS to a directory holding both", cosignModuleVersion, syftModuleVersion)
		}
	}
	out, err := exec.Command("bash", filepath.Join("..", ".ci", "tools.sh")).Output()
	if err != nil {
		t.Fatalf(".ci/tools.sh: %v", err)
	}
	lines := strings.Fields(string(out))
	return lines[len(lines)-1]
}

var canUnshare = sync.OnceValue(func() bool {
	return exec.Command("unshare", "-rn", "true").Run() == nil
})

// run runs a CLI from the tools directory in dir, offline, with extra
// environment variables, and returns its combined output.
func run(t *testing.T, dir string, env []string, tool string, args ...string) (string, error) {
	t.Helper()
	name := filepath.Join(toolsDir(t), tool)
	if canUnshare() {
		args = append([]string{"-rn", name}, args...)
		name = "unshare"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=", "https_proxy=http://127.0.0.1:9", "http_proxy=http://127.0.0.1:9",
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cosignEnv stops cosign from fetching the public good trusted root over TUF
// (any SIGSTORE_* override does; it is not used to verify anything with
// --key and --insecure-ignore-tlog).
func cosignEnv(dir string) []string {
	return []string{"SIGSTORE_REKOR_PUBLIC_KEY=" + filepath.Join(dir, "cosign.pub")}
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wantCosign runs cosign and checks that it accepts (ok) or refuses, and
// that it never had to warn about reaching out.
func wantCosign(t *testing.T, dir string, ok bool, args ...string) {
	t.Helper()
	out, err := run(t, dir, cosignEnv(dir), "cosign", args...)
	switch {
	case ok && (err != nil || !strings.Contains(out, "Verified OK")):
		t.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	case !ok && err == nil:
		t.Errorf("cosign %s accepted:\n%s", strings.Join(args, " "), out)
	case strings.Contains(strings.ToLower(out), "tuf") || strings.Contains(out, "Could not fetch"):
		t.Errorf("cosign %s tried the network:\n%s", strings.Join(args, " "), out)
	}
	if testing.Verbose() {
		t.Logf("cosign %s -> err=%v: %s", strings.Join(args, " "), err, strings.TrimSpace(out))
	}
}

// TestCosignVerifiesSBOMSignatures: `cosign verify-blob --key` accepts the
// signature and the bundle of every SBOM offline, and refuses both for a
// tampered SBOM.
func TestCosignVerifiesSBOMSignatures(t *testing.T) {
	toolsDir(t)
	k := keys(t)
	mods := []Module{}
	for _, mv := range []module.Version{modX, modNATS, modNet} {
		mods = append(mods, cachedModule(t, mv))
	}
	mods = append(mods, writeModule(t, module.Version{Path: "corp.example/m", Version: "v1.0.0"},
		map[string]string{"go.mod": replaceGoMod, "go.sum": replaceGoSum, "LICENSE": mitText}))
	for _, m := range mods {
		t.Run(m.Path, func(t *testing.T) {
			doc := generate(t, m)
			sig, bundle, err := k.signer.SignBlob(doc)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			tampered := bytes.Replace(doc, []byte(`"versionInfo": "`), []byte(`"versionInfo": "0`), 1)
			writeFiles(t, dir, map[string][]byte{
				"cosign.pub":             k.pubPEM,
				"m.spdx.json":            doc,
				"m.spdx.json.sig":        sig,
				"m.spdx.json.bundle":     bundle,
				"trusted_root.json":      []byte(OfflineTrustedRoot),
				"tampered.spdx.json":     tampered,
				"tampered.spdx.json.sig": sig,
			})
			wantCosign(t, dir, true, "verify-blob", "--key", "cosign.pub", "--signature", "m.spdx.json.sig", "--insecure-ignore-tlog", "m.spdx.json")
			wantCosign(t, dir, true, "verify-blob", "--key", "cosign.pub", "--bundle", "m.spdx.json.bundle", "--trusted-root", "trusted_root.json", "--insecure-ignore-tlog", "m.spdx.json")
			wantCosign(t, dir, false, "verify-blob", "--key", "cosign.pub", "--signature", "m.spdx.json.sig", "--insecure-ignore-tlog", "tampered.spdx.json")
			wantCosign(t, dir, false, "verify-blob", "--key", "cosign.pub", "--bundle", "m.spdx.json.bundle", "--trusted-root", "trusted_root.json", "--insecure-ignore-tlog", "tampered.spdx.json")
		})
	}
}

// TestCosignVerifiesSummaries: `cosign verify-blob-attestation --key --type
// https://slsa.dev/verification_summary/v1` accepts every summary for its
// own zip and refuses it for every other zip, and for another predicate type.
func TestCosignVerifiesSummaries(t *testing.T) {
	toolsDir(t)
	k := keys(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"cosign.pub": k.pubPEM})
	var names []string
	var sums []Summary
	for i, mv := range []module.Version{modX, modNATS, modNet} {
		m := cachedModule(t, mv)
		data, err := os.ReadFile(m.ZipFile)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		s := testSummary(hex.EncodeToString(sum[:]))
		s.Module, s.Version, s.ZipHash = m.Path, m.Version, m.ZipHash
		env, err := k.signer.SignSummary(s)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			sums = append(sums, s)
		}
		name := string(rune('a' + i))
		writeFiles(t, dir, map[string][]byte{name + ".zip": data, name + ".intoto.jsonl": env})
		names = append(names, name)
	}
	for _, att := range names {
		for _, zip := range names {
			wantCosign(t, dir, att == zip, "verify-blob-attestation", "--key", "cosign.pub",
				"--signature", att+".intoto.jsonl", "--type", PredicateVerificationSummary, "--insecure-ignore-tlog", zip+".zip")
		}
	}
	wantCosign(t, dir, false, "verify-blob-attestation", "--key", "cosign.pub",
		"--signature", "a.intoto.jsonl", "--type", "slsaprovenance1", "--insecure-ignore-tlog", "a.zip")

	// A re-verification batch: one statement with the zips of a and b as
	// subjects verifies for each of them and not for c.
	batch, err := k.signer.SignSummaries(sums, "https://github.com/modgate/modgate/reverify/run-1")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string][]byte{"batch.jsonl": batch})
	for _, zip := range names {
		wantCosign(t, dir, zip != "c", "verify-blob-attestation", "--key", "cosign.pub",
			"--signature", "batch.jsonl", "--type", PredicateVerificationSummary, "--insecure-ignore-tlog", zip+".zip")
	}
}

// TestCosignKeyInterop: keys made by `cosign generate-key-pair` load into a
// Signer, and `cosign sign-blob` signs with a key from GenerateKeys.
func TestCosignKeyInterop(t *testing.T) {
	toolsDir(t)
	dir := t.TempDir()
	pw := "COSIGN_PASSWORD=" + string(testPassword)
	if out, err := run(t, dir, []string{pw}, "cosign", "generate-key-pair"); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	priv, _ := os.ReadFile(filepath.Join(dir, "cosign.key"))
	pub, _ := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	s, err := LoadSigner(priv, testPassword)
	if err != nil {
		t.Fatalf("LoadSigner(cosign generate-key-pair's key): %v", err)
	}
	if !bytes.Equal(bytes.TrimSpace(s.PublicKeyPEM()), bytes.TrimSpace(pub)) {
		t.Errorf("public keys differ:\n%s\n%s", s.PublicKeyPEM(), pub)
	}

	k := keys(t)
	blob := []byte("signed by the cosign CLI with a modgate key\n")
	writeFiles(t, dir, map[string][]byte{"modgate.key": k.privPEM, "blob": blob})
	out, err := run(t, dir, []string{pw}, "cosign", "sign-blob", "--key", "modgate.key", "--tlog-upload=false", "--yes", "--output-signature", "blob.sig", "blob")
	if err != nil {
		t.Fatalf("cosign sign-blob: %v\n%s", err, out)
	}
	sig, _ := os.ReadFile(filepath.Join(dir, "blob.sig"))
	if err := VerifyBlob(k.pubPEM, blob, sig); err != nil {
		t.Errorf("VerifyBlob(cosign sign-blob's signature): %v", err)
	}
}

// TestSyftCLIAgrees: the real syft CLI, run offline over the whole unzipped
// module with only the go.mod cataloger, finds the same packages (purls) as
// Generate.
func TestSyftCLIAgrees(t *testing.T) {
	toolsDir(t)
	for _, mv := range []module.Version{modX, modNATS} {
		m := cachedModule(t, mv)
		dir := filepath.Join(t.TempDir(), "m")
		if err := modzip.Unzip(dir, mv, m.ZipFile); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, dir, []string{
			"SYFT_GOLANG_USE_PACKAGES_LIB=false", "SYFT_GOLANG_SEARCH_REMOTE_LICENSES=false",
			"SYFT_CHECK_FOR_APP_UPDATE=false", "SYFT_FILE_METADATA_SELECTION=none", "SYFT_FILE_CONTENT_GLOBS=",
		}, "syft", "scan", "dir:.", "--override-default-catalogers", "go-module-file-cataloger", "-o", "purls", "-q")
		if err != nil {
			t.Fatalf("syft: %v\n%s", err, out)
		}
		cli := strings.Fields(out)
		var lib []string
		for _, p := range checkSPDX(t, generate(t, m)).Packages[1:] {
			lib = append(lib, refs(p)["purl"])
		}
		slices.Sort(cli)
		slices.Sort(lib)
		if !slices.Equal(cli, lib) {
			t.Errorf("%s: syft CLI purls\n%v\nGenerate\n%v", mv, cli, lib)
		}
	}
}
