package sbom

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/memo"
	"golang.org/x/mod/module"
)

var testPassword = []byte("correct horse battery staple")

type testKeyPair struct {
	privPEM, pubPEM []byte
	signer          *Signer
}

// testKeys is generated and decrypted once: each costs a third of a second
// of scrypt.
var testKeys = sync.OnceValues(func() (*testKeyPair, error) {
	priv, pub, err := GenerateKeys(testPassword)
	if err != nil {
		return nil, err
	}
	s, err := LoadSigner(priv, testPassword)
	if err != nil {
		return nil, err
	}
	return &testKeyPair{priv, pub, s}, nil
})

func keys(tb testing.TB) *testKeyPair {
	tb.Helper()
	k, err := testKeys()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestKeys(t *testing.T) {
	k := keys(t)
	if !bytes.HasPrefix(k.privPEM, []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) {
		t.Errorf("private key is not an encrypted sigstore key:\n%.60s", k.privPEM)
	}
	if !bytes.Equal(k.signer.PublicKeyPEM(), k.pubPEM) {
		t.Errorf("PublicKeyPEM differs from the generated public key:\n%s\n%s", k.signer.PublicKeyPEM(), k.pubPEM)
	}
	if _, err := LoadSigner(k.privPEM, []byte("wrong")); err == nil {
		t.Error("LoadSigner accepted a wrong password")
	}
	if _, _, err := GenerateKeys(nil); err == nil {
		t.Error("GenerateKeys accepted an empty password")
	}
}

func TestSignBlob(t *testing.T) {
	k := keys(t)
	data := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	sig, bundle, err := k.signer.SignBlob(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base64.StdEncoding.DecodeString(string(sig)); err != nil {
		t.Errorf("signature is not base64: %q", sig)
	}
	if err := VerifyBlob(k.pubPEM, data, sig); err != nil {
		t.Errorf("VerifyBlob: %v", err)
	}
	if err := VerifyBundle(k.pubPEM, data, bundle); err != nil {
		t.Errorf("VerifyBundle: %v", err)
	}
	var b struct {
		MediaType            string `json:"mediaType"`
		VerificationMaterial struct {
			PublicKey struct{ Hint string } `json:"publicKey"`
		} `json:"verificationMaterial"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil || b.MediaType != bundleMediaType || b.VerificationMaterial.PublicKey.Hint != k.signer.hint {
		t.Errorf("bundle %s: %v", bundle, err)
	}

	tampered := append(bytes.Clone(data[:len(data)-1]), ' ', '}')
	other, _, err := GenerateKeys([]byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := LoadSigner(other, []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"tampered blob":          VerifyBlob(k.pubPEM, tampered, sig),
		"tampered blob (bundle)": VerifyBundle(k.pubPEM, tampered, bundle),
		"other key":              VerifyBlob(otherSigner.PublicKeyPEM(), data, sig),
		"other key (bundle)":     VerifyBundle(otherSigner.PublicKeyPEM(), data, bundle),
		"not base64":             VerifyBlob(k.pubPEM, data, []byte("!!")),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
}

func testSummary(zipSHA256 string) Summary {
	return Summary{
		Module: "corp.example/m", Version: "v1.2.3",
		ZipSHA256: zipSHA256, ZipHash: "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
		PolicyURI: "https://modgate.example/policies/default.cel", PolicyDigest: "sha256:" + strings.Repeat("ab", 32),
		Verified: time.Date(2026, 11, 21, 12, 30, 0, 500, time.FixedZone("CET", 3600)),
		Inputs: []ResourceDescriptor{{
			Name: "corp.example/m@v1.2.3.spdx.json", URI: "corp.example/m/@v/v1.2.3.spdx.json",
			Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}, MediaType: "application/spdx+json",
		}},
		VerifierID: "https://modgate.example/verifier", VerifierVersion: "v0.9.0",
	}
}

func TestSignSummary(t *testing.T) {
	k := keys(t)
	zipA, zipB := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	env, err := k.signer.SignSummary(testSummary(zipA))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(env, []byte("\n")) != 1 || env[len(env)-1] != '\n' {
		t.Errorf("envelope is not one JSON line: %q", env)
	}
	if err := hasZip(k.pubPEM, env, zipA); err != nil {
		t.Errorf("zip A: %v", err)
	}
	if err := hasZip(k.pubPEM, env, zipB); !errors.Is(err, ErrBadSignature) {
		t.Errorf("zip B: %v, want ErrBadSignature", err)
	}
	other, err := LoadSigner(mustGenerate(t, "other"), []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if err := hasZip(other.PublicKeyPEM(), env, zipA); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another key: %v, want ErrBadSignature", err)
	}

	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
	}
	if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != "application/vnd.in-toto+json" {
		t.Fatalf("envelope: %v, payload type %q", err, e.PayloadType)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1",` +
		`"subject":[{"name":"corp.example/m/@v/v1.2.3.zip","digest":{"dirHash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","sha256":"` + zipA + `"}}],` +
		`"predicateType":"https://slsa.dev/verification_summary/v1",` +
		`"predicate":{"verifier":{"id":"https://modgate.example/verifier","version":{"modgate":"v0.9.0"}},` +
		`"timeVerified":"2026-11-21T11:30:00.0000005Z","resourceUri":"pkg:golang/corp.example/m@v1.2.3",` +
		`"policy":{"uri":"https://modgate.example/policies/default.cel","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}},` +
		`"inputAttestations":[{"name":"corp.example/m@v1.2.3.spdx.json","uri":"corp.example/m/@v/v1.2.3.spdx.json","digest":{"sha256":"` + strings.Repeat("cd", 32) + `"},"mediaType":"application/spdx+json"}],` +
		`"verificationResult":"PASSED","verifiedLevels":["SLSA_BUILD_LEVEL_0"],"slsaVersion":"1.0"}}`
	if string(e.Payload) != want {
		t.Errorf("statement\n%s\nwant\n%s", e.Payload, want)
	}
}

// TestAdmissionOfInputs: an input named in the summary must match the
// digests asked about; one not named is ErrInputNotNamed. OpenSummary
// lists them.
func TestAdmissionOfInputs(t *testing.T) {
	k := keys(t)
	zipA := strings.Repeat("0a", 32)
	sum := testSummary(zipA)
	h1 := sum.ZipHash
	env, err := k.signer.SignSummary(sum)
	if err != nil {
		t.Fatal(err)
	}
	sbomName := "corp.example/m@v1.2.3.spdx.json"
	in := func(name, sha string) ResourceDescriptor {
		return ResourceDescriptor{Name: name, Digest: map[string]string{"sha256": sha}}
	}
	for _, tc := range []struct {
		name   string
		inputs []ResourceDescriptor
		want   error // nil, ErrBadSignature or ErrInputNotNamed
	}{
		{"named, same digest", []ResourceDescriptor{in(sbomName, strings.Repeat("cd", 32))}, nil},
		{"named, upper-case hex", []ResourceDescriptor{in(sbomName, strings.Repeat("CD", 32))}, nil},
		{"named, another digest", []ResourceDescriptor{in(sbomName, strings.Repeat("ce", 32))}, ErrInputMismatch},
		{"named, empty digest", []ResourceDescriptor{in(sbomName, "")}, ErrBadSignature},
		{"named, no digest", []ResourceDescriptor{{Name: sbomName}}, ErrBadSignature},
		{"named, another algorithm", []ResourceDescriptor{{Name: sbomName, Digest: map[string]string{"sha512": "aa"}}}, ErrBadSignature},
		{"not named", []ResourceDescriptor{in("corp.example/m@v1.2.3.verdict.json", strings.Repeat("cd", 32))}, ErrInputNotNamed},
	} {
		err := admissionOf(k.pubPEM, env, "corp.example/m", "v1.2.3", zipA, h1, tc.inputs...)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) || err != nil && !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	opened, err := OpenSummary(k.pubPEM, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	uri, inputs := opened.ResourceURI(), opened.Inputs()
	if len(inputs) != 1 || inputs[0].Name != sbomName || inputs[0].Digest["sha256"] != strings.Repeat("cd", 32) ||
		uri != ModulePURL("corp.example/m", "v1.2.3") || uri != "pkg:golang/corp.example/m@v1.2.3" {
		t.Errorf("OpenSummary: about %q, inputs %+v", uri, inputs)
	}
	other, err := LoadSigner(mustGenerate(t, "other"), []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSummary(other.PublicKeyPEM(), env, nil); !errors.Is(err, ErrBadSignature) {
		t.Errorf("OpenSummary with another key: %v, want ErrBadSignature", err)
	}
	// The subject is still checked with inputs.
	if err := admissionOf(k.pubPEM, env, "corp.example/m", "v1.2.3", strings.Repeat("0b", 32), h1, in(sbomName, strings.Repeat("cd", 32))); !errors.Is(err, ErrBadSignature) || errors.Is(err, ErrInputNotNamed) {
		t.Errorf("another zip, input matching: %v, want ErrBadSignature about the subject", err)
	}
}

// TestOpenSummaryMemo: through a memo, a summary's signature is verified
// once per envelope and key; what it says is read every time, and any other
// bytes or key are verified afresh.
func TestOpenSummaryMemo(t *testing.T) {
	k := keys(t)
	zipA, zipB := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	sum := testSummary(zipA)
	env, err := k.signer.SignSummary(sum)
	if err != nil {
		t.Fatal(err)
	}
	m := &countingMemo{}
	for i := range 3 {
		opened, err := OpenSummary(k.pubPEM, env, m)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if m.checks != 1 {
			t.Errorf("open %d: %d signature checks, want 1", i, m.checks)
		}
		if err := opened.HasZip(zipA); err != nil {
			t.Errorf("open %d: HasZip(A): %v", i, err)
		}
		if err := opened.HasDirHash(sum.ZipHash); err != nil {
			t.Errorf("open %d: HasDirHash: %v", i, err)
		}
		if err := opened.HasZip(zipB); !errors.Is(err, ErrBadSignature) {
			t.Errorf("open %d: HasZip(B) = %v, want ErrBadSignature", i, err)
		}
		if got := opened.ResourceURI(); got != ModulePURL(sum.Module, sum.Version) {
			t.Errorf("open %d: about %q", i, got)
		}
	}
	// The same signature over another statement (zip B): new bytes, so
	// verified, and refused.
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []any  `json:"signatures"`
	}
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	e.Payload = bytes.ReplaceAll(e.Payload, []byte(zipA), []byte(zipB))
	forged, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSummary(k.pubPEM, forged, m); !errors.Is(err, ErrBadSignature) || m.checks != 2 {
		t.Errorf("statement changed under the same signature: %v after %d checks, want ErrBadSignature after 2", err, m.checks)
	}
	other, err := LoadSigner(mustGenerate(t, "other"), []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSummary(other.PublicKeyPEM(), env, m); !errors.Is(err, ErrBadSignature) || m.checks != 3 {
		t.Errorf("another key: %v after %d checks, want ErrBadSignature after 3", err, m.checks)
	}
}

// countingMemo is a SignatureMemo that counts the checks it runs.
type countingMemo struct {
	seen   memo.Set
	checks int
}

func (c *countingMemo) Verify(check func() error, key ...[]byte) error {
	return c.seen.Verify(func() error { c.checks++; return check() }, key...)
}

// hasZip opens env and asks whether it names the zip with SHA-256 zipSHA.
func hasZip(pub, env []byte, zipSHA string) error {
	s, err := OpenSummary(pub, env, nil)
	if err != nil {
		return err
	}
	return s.HasZip(zipSHA)
}

// admissionOf opens env and asks whether it is the admission summary of
// path@version.
func admissionOf(pub, env []byte, path, version, zipSHA, h1 string, inputs ...ResourceDescriptor) error {
	s, err := OpenSummary(pub, env, nil)
	if err != nil {
		return err
	}
	return s.AdmissionOf(path, version, zipSHA, h1, inputs...)
}

func mustGenerate(t *testing.T, password string) []byte {
	t.Helper()
	priv, _, err := GenerateKeys([]byte(password))
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestSignSummaryRefuses(t *testing.T) {
	k := keys(t)
	for _, tc := range []struct {
		name   string
		change func(*Summary)
	}{
		{"bad module path", func(s *Summary) { s.Module = "Corp..example/m" }},
		{"zip sha256 not hex", func(s *Summary) { s.ZipSHA256 = "sha256:" + strings.Repeat("0", 64) }},
		{"zip hash not h1", func(s *Summary) { s.ZipHash = "h2:abc" }},
		{"no policy", func(s *Summary) { s.PolicyURI = "" }},
		{"policy digest without algorithm", func(s *Summary) { s.PolicyDigest = strings.Repeat("ab", 32) }},
		{"no verifier", func(s *Summary) { s.VerifierID = "" }},
		{"no time", func(s *Summary) { s.Verified = time.Time{} }},
		{"input without digest", func(s *Summary) { s.Inputs = []ResourceDescriptor{{URI: "x"}} }},
	} {
		sum := testSummary(strings.Repeat("0a", 32))
		tc.change(&sum)
		_, err := k.signer.SignSummary(sum)
		var merr *module.ModuleError
		if err == nil || !errors.As(err, &merr) {
			t.Errorf("%s: err = %v, want a module error", tc.name, err)
		}
	}
}

// TestSignSummaries: one statement for a batch; each zip verifies by
// SHA-256 when the batch has it and by dirHash always; a summary without
// SHA-256 (a shallow re-verification) names its zip by dirHash alone, and
// SignSummary still refuses one.
func TestSignSummaries(t *testing.T) {
	k := keys(t)
	a, b := testSummary(strings.Repeat("0a", 32)), testSummary("")
	b.Version, b.ZipHash = "v1.2.4", "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	env, err := k.signer.SignSummaries([]Summary{a, b}, "https://modgate.example/reverify/run-1")
	if err != nil {
		t.Fatal(err)
	}
	opened, err := OpenSummary(k.pubPEM, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := opened.HasZip(strings.Repeat("0a", 32)); err != nil {
		t.Errorf("HasZip(a): %v", err)
	}
	for _, h1 := range []string{a.ZipHash, b.ZipHash} {
		if err := opened.HasDirHash(h1); err != nil {
			t.Errorf("HasDirHash(%s): %v", h1, err)
		}
	}
	if err := opened.HasDirHash("h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); !errors.Is(err, ErrBadSignature) {
		t.Errorf("HasDirHash(other) = %v", err)
	}
	// Both names of a zip must be on the same subject: a's bytes with other
	// files is no zip this statement speaks of. (Then it is still no
	// admission summary of a: it is about the run.)
	const noSubject, notAbout = "no subject has", "verification summary is about"
	for _, tc := range []struct {
		sha, h1, want string
	}{
		{strings.Repeat("0a", 32), a.ZipHash, notAbout},
		{strings.Repeat("0a", 32), "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", noSubject},
		{"", b.ZipHash, noSubject},
	} {
		err := opened.AdmissionOf(a.Module, a.Version, tc.sha, tc.h1)
		if !errors.Is(err, ErrBadSignature) || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AdmissionOf(sha256 %q, %s) of a re-verification statement = %v, want %q", tc.sha, tc.h1, err, tc.want)
		}
	}
	single, err := k.signer.SignSummary(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := admissionOf(k.pubPEM, single, a.Module, a.Version, strings.Repeat("0a", 32), a.ZipHash); err != nil {
		t.Errorf("a's own summary: %v", err)
	}
	if err := admissionOf(k.pubPEM, single, a.Module, "v1.2.4", strings.Repeat("0a", 32), a.ZipHash); !errors.Is(err, ErrBadSignature) {
		t.Errorf("a's summary as another version's = %v, want ErrBadSignature", err)
	}
	var e struct{ Payload []byte }
	json.Unmarshal(env, &e)
	if !bytes.Contains(e.Payload, []byte(`"resourceUri":"https://modgate.example/reverify/run-1"`)) || bytes.Count(e.Payload, []byte(`"sha256":"`+strings.Repeat("0a", 32))) != 1 {
		t.Errorf("statement %s", e.Payload)
	}
	if _, err := k.signer.SignSummary(b); err == nil {
		t.Error("SignSummary accepted a summary without the zip's SHA-256")
	}
	if _, err := k.signer.SignSummaries(nil, "x"); err == nil {
		t.Error("SignSummaries accepted no summaries")
	}
}

func TestAddPrevious(t *testing.T) {
	k := keys(t)
	// A Signer of its own: AddPrevious changes it, and keys(t) is shared.
	s, err := LoadSigner(k.privPEM, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	_, old, err := GenerateKeys([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := []byte("-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMwrFFtd7L3c9U8i7sx3JCILpzN5OKTmX4v4W7k9n2fuEl4j4SvCEYiM1mLWwV0vQ4u1E0zHPXyZbu7PqGZ4LbcCAwEAAQ==\n-----END PUBLIC KEY-----\n")
	for name, tc := range map[string]struct {
		pem  []byte
		want string
	}{
		"not a key":   {[]byte("hello"), "previous public key"},
		"current key": {k.pubPEM, "the current signing key's"},
		"not P-256":   {rsaPEM, "want ECDSA P-256"},
	} {
		if err := s.AddPrevious(tc.pem); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	if err := s.AddPrevious(old); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPrevious(old); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("the same key twice: %v", err)
	}
	if got := s.PreviousKeys(); len(got) != 1 || !bytes.Equal(got[0], old) {
		t.Errorf("PreviousKeys = %q", got)
	}
}
