package sbom

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	"golang.org/x/mod/module"
)

const (
	// PredicateVerificationSummary is the SLSA verification summary predicate
	// type; `cosign verify-blob-attestation --type` takes it as is.
	PredicateVerificationSummary = "https://slsa.dev/verification_summary/v1"
	statementType                = "https://in-toto.io/Statement/v1"
	inTotoPayloadType            = "application/vnd.in-toto+json" // as cosign's types.IntotoPayloadType
	resultPassed                 = "PASSED"
	// levelBuild0 is claimed when the caller names no level: modgate checks
	// the source (signed tag, checksums, policy), not how anything was built.
	levelBuild0 = "SLSA_BUILD_LEVEL_0"
)

// ResourceDescriptor names a resource by URI and digests (in-toto v1
// ResourceDescriptor), such as an input to verification.
type ResourceDescriptor struct {
	Name      string            `json:"name,omitempty"`
	URI       string            `json:"uri,omitempty"`
	Digest    map[string]string `json:"digest,omitempty"` // algorithm (sha256, …) to lowercase hex
	MediaType string            `json:"mediaType,omitempty"`
}

// Summary is what modgate attests about an admitted module version: who
// verified it, when, against which policy, with which inputs, and that it
// passed. SignSummary only signs passing results.
type Summary struct {
	Module, Version string
	ZipSHA256       string // lowercase hex SHA-256 of the module zip: the statement's subject
	ZipHash         string // "h1:…" of the zip (also in the subject, as dirHash)
	PolicyURI       string // required by the predicate
	PolicyDigest    string // "<algorithm>:<hex>", e.g. "sha256:…"; optional
	Verified        time.Time
	Inputs          []ResourceDescriptor // e.g. the SBOM, with its sha256
	VerifierID      string               // a URI, e.g. "https://modgate.dev/verifier"
	VerifierVersion string               // modgate's version
	// VerifiedLevels are the SLSA levels claimed, at most one per track.
	// Empty means SLSA_BUILD_LEVEL_0: no claim about how the module was built.
	VerifiedLevels []string

	// byDirHash allows an empty ZipSHA256 (SignSummaries only): the zip is
	// then named by its dirHash alone.
	byDirHash bool
}

type statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     vsaPredicate         `json:"predicate"`
}

type vsaPredicate struct {
	Verifier struct {
		ID      string            `json:"id"`
		Version map[string]string `json:"version,omitempty"`
	} `json:"verifier"`
	TimeVerified       string               `json:"timeVerified"`
	ResourceURI        string               `json:"resourceUri"`
	Policy             ResourceDescriptor   `json:"policy"`
	InputAttestations  []ResourceDescriptor `json:"inputAttestations,omitempty"`
	VerificationResult string               `json:"verificationResult"`
	VerifiedLevels     []string             `json:"verifiedLevels"`
	SLSAVersion        string               `json:"slsaVersion,omitempty"`
}

// check validates sum and returns the dirHash of its zip.
func (sum Summary) check() (h1 string, err error) {
	if err := module.Check(sum.Module, sum.Version); err != nil {
		return "", err
	}
	if !isHexDigest(sum.ZipSHA256, 64) && !(sum.ZipSHA256 == "" && sum.byDirHash) {
		return "", fmt.Errorf("zip SHA-256 %q is not 64 lowercase hex digits", sum.ZipSHA256)
	}
	if h1, err = dirHash(sum.ZipHash); err != nil {
		return "", err
	}
	switch {
	case sum.PolicyURI == "":
		return "", errors.New("no policy URI")
	case sum.VerifierID == "":
		return "", errors.New("no verifier id")
	case sum.Verified.IsZero():
		return "", errors.New("no verification time")
	}
	if sum.PolicyDigest != "" {
		alg, value, ok := strings.Cut(sum.PolicyDigest, ":")
		if !ok || alg == "" || !isHexDigest(value, 0) {
			return "", fmt.Errorf("policy digest %q is not <algorithm>:<lowercase hex>", sum.PolicyDigest)
		}
	}
	for _, in := range sum.Inputs {
		if len(in.Digest) == 0 {
			return "", fmt.Errorf("input %q has no digest", in.URI+in.Name)
		}
	}
	return h1, nil
}

func (sum Summary) statement() (*statement, error) {
	h1, err := sum.check()
	if err != nil {
		return nil, err
	}
	policy := ResourceDescriptor{URI: sum.PolicyURI}
	if alg, value, ok := strings.Cut(sum.PolicyDigest, ":"); ok {
		policy.Digest = map[string]string{alg: value}
	}
	escPath, _ := module.EscapePath(sum.Module)
	escVersion, _ := module.EscapeVersion(sum.Version)
	st := &statement{
		Type: statementType,
		Subject: []ResourceDescriptor{{
			Name:   escPath + "/@v/" + escVersion + ".zip",
			Digest: map[string]string{"sha256": sum.ZipSHA256, "dirHash": h1},
		}},
		PredicateType: PredicateVerificationSummary,
	}
	if sum.ZipSHA256 == "" {
		delete(st.Subject[0].Digest, "sha256")
	}
	p := &st.Predicate
	p.Verifier.ID = sum.VerifierID
	if sum.VerifierVersion != "" {
		p.Verifier.Version = map[string]string{"modgate": sum.VerifierVersion}
	}
	p.TimeVerified = sum.Verified.UTC().Format(time.RFC3339Nano)
	p.ResourceURI = goPURL(sum.Module, sum.Version)
	p.Policy = policy
	p.InputAttestations = sum.Inputs
	p.VerificationResult = resultPassed
	p.VerifiedLevels = sum.VerifiedLevels
	if len(p.VerifiedLevels) == 0 {
		p.VerifiedLevels = []string{levelBuild0}
	}
	p.SLSAVersion = "1.0"
	return st, nil
}

// SignSummary returns the summary as an in-toto v1 statement with the SLSA
// verification summary predicate, signed as a DSSE envelope, on one line
// ending in a newline (the .intoto.jsonl format). The subject is the module
// zip, by SHA-256 (what cosign checks) and dirHash (its h1:, in hex).
func (s *Signer) SignSummary(sum Summary) ([]byte, error) {
	st, err := sum.statement()
	if err != nil {
		return nil, &module.ModuleError{Path: sum.Module, Version: sum.Version, Err: fmt.Errorf("verification summary: %w", err)}
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	env, err := dsse.WrapSigner(s.sv, inTotoPayloadType).SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, &module.ModuleError{Path: sum.Module, Version: sum.Version, Err: fmt.Errorf("signing verification summary: %w", err)}
	}
	return append(env, '\n'), nil
}

// AdmissionOf checks that this is the summary of the admission of
// path@version: its resourceUri is the version's ModulePURL (a
// re-verification statement, about a run, names the same zip but is not
// one); one subject names the zip both by its SHA-256 zipSHA256 (its
// bytes) and by the dirHash of h1 (its files), binding the two, so that a
// re-verification can hash the bytes once instead of extracting and
// hashing every file; and each of inputs is among its input attestations
// with its name and every digest it gives (ErrInputNotNamed when the
// summary names no input of that name, ErrInputMismatch when another
// digest).
func (s *OpenedSummary) AdmissionOf(path, version, zipSHA256, h1 string, inputs ...ResourceDescriptor) error {
	want, err := dirHash(h1)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	if err := s.st.hasSubject(digest{"sha256", strings.ToLower(zipSHA256)}, digest{"dirHash", want}); err != nil {
		return err
	}
	if err := s.st.hasInputs(inputs); err != nil {
		return err
	}
	if want := ModulePURL(path, version); s.st.Predicate.ResourceURI != want {
		return fmt.Errorf("%w: verification summary is about %s, not %s", ErrBadSignature, s.st.Predicate.ResourceURI, want)
	}
	return nil
}

// ErrInputNotNamed is the error (with ErrBadSignature) of a summary that
// names no input attestation by a name asked about: summaries made before
// modgate named the admission record are such.
var ErrInputNotNamed = errors.New("verification summary names no such input")

// ErrInputMismatch is the error (with ErrBadSignature) of an input whose
// digest is not the one the verification summary names.
var ErrInputMismatch = errors.New("input differs from the one the verification summary names")

// A SignatureMemo remembers signatures that verified (memo.Set is one):
// Verify runs check unless the same key parts verified before. A nil one
// remembers nothing.
type SignatureMemo interface {
	Verify(check func() error, key ...[]byte) error
}

// An OpenedSummary is a verification summary whose signature verified and
// whose statement is a PASSED SLSA verification summary; its methods ask
// about what it says. It lets a caller that asks
// several things of one summary verify its signature once.
type OpenedSummary struct{ st *statement }

// OpenSummary verifies envelope's signature by pubPEM and reads its
// statement. With a memo, an envelope whose signature verified before under
// the same key is only read again: the cryptography is what costs.
func OpenSummary(pubPEM, envelope []byte, memo SignatureMemo) (*OpenedSummary, error) {
	st, err := openSummary(pubPEM, envelope, memo)
	if err != nil {
		return nil, err
	}
	return &OpenedSummary{st}, nil
}

// HasZip checks that the zip with SHA-256 zipSHA256 is among the subjects.
func (s *OpenedSummary) HasZip(zipSHA256 string) error {
	return s.st.hasSubject(digest{"sha256", strings.ToLower(zipSHA256)})
}

// HasDirHash checks that the zip whose files hash to h1 (an "h1:" hash) is
// among the subjects: what the summary says of the module's contents, not
// of the zip's bytes.
func (s *OpenedSummary) HasDirHash(h1 string) error {
	want, err := dirHash(h1)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return s.st.hasSubject(digest{"dirHash", want})
}

// ResourceURI is what the summary is about: the module version's ModulePURL
// in an admission summary, the run in a re-verification statement.
func (s *OpenedSummary) ResourceURI() string { return s.st.Predicate.ResourceURI }

// Inputs are the input attestations the summary names.
func (s *OpenedSummary) Inputs() []ResourceDescriptor { return s.st.Predicate.InputAttestations }

// ModulePURL is the package URL of a Go module version, the resourceUri of
// its admission summary.
func ModulePURL(path, version string) string { return goPURL(path, version) }

// hasInputs checks that each of inputs is named among the statement's
// input attestations with the digests it gives.
func (st *statement) hasInputs(inputs []ResourceDescriptor) error {
	for _, in := range inputs {
		found := false
		for _, have := range st.Predicate.InputAttestations {
			if have.Name != in.Name {
				continue
			}
			found = true
			if len(in.Digest) == 0 {
				return fmt.Errorf("%w: input %s asked about without a digest", ErrBadSignature, in.Name)
			}
			for alg, d := range in.Digest {
				if d == "" || have.Digest[alg] != strings.ToLower(d) {
					return fmt.Errorf("%w: %w: %s has %s %s, the verification summary names %s",
						ErrBadSignature, ErrInputMismatch, in.Name, alg, strings.ToLower(d), have.Digest[alg])
				}
			}
		}
		if !found {
			return fmt.Errorf("%w: %w: %s", ErrBadSignature, ErrInputNotNamed, in.Name)
		}
	}
	return nil
}

// digest is one algorithm's digest of a subject.
type digest struct{ alg, value string }

// hasSubject checks that one subject of the statement has every digest in
// want.
func (st *statement) hasSubject(want ...digest) error {
	var names []string
	for _, w := range want {
		names = append(names, w.alg+" "+w.value)
	}
subjects:
	for _, subj := range st.Subject {
		for _, w := range want {
			if d := subj.Digest[w.alg]; d == "" || d != w.value {
				continue subjects
			}
		}
		return nil
	}
	return fmt.Errorf("%w: verification summary is about another zip (no subject has %s)", ErrBadSignature, strings.Join(names, " and "))
}

// openSummary verifies the envelope's signature, through memo when there
// is one, and returns its statement, which must be a PASSED verification
// summary.
func openSummary(pubPEM, envelope []byte, memo SignatureMemo) (*statement, error) {
	envelope = bytes.TrimSpace(envelope)
	var payload []byte
	verify := func() error {
		v, err := loadVerifier(pubPEM)
		if err != nil {
			return err
		}
		dv := dsse.WrapVerifier(v, dsse.WithExpectedPayloadType(inTotoPayloadType), dsse.WithDecodedPayload(&payload))
		if err := dv.VerifySignature(bytes.NewReader(envelope), nil); err != nil {
			return fmt.Errorf("%w: verification summary: %v", ErrBadSignature, err)
		}
		return nil
	}
	var err error
	if memo == nil {
		err = verify()
	} else {
		err = memo.Verify(verify, []byte("dsse "+inTotoPayloadType), pubPEM, envelope)
	}
	if err != nil {
		return nil, err
	}
	if payload == nil {
		// A memo hit: these bytes verified under this key before, so their
		// payload is the one that was signed.
		if payload, err = envelopePayload(envelope); err != nil {
			return nil, fmt.Errorf("%w: verification summary: %v", ErrBadSignature, err)
		}
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: verification summary: reading statement: %v", ErrBadSignature, err)
	}
	switch {
	case st.Type != statementType:
		return nil, fmt.Errorf("%w: verification summary: statement type %q, want %q", ErrBadSignature, st.Type, statementType)
	case st.PredicateType != PredicateVerificationSummary:
		return nil, fmt.Errorf("%w: verification summary: predicate type %q, want %q", ErrBadSignature, st.PredicateType, PredicateVerificationSummary)
	case st.Predicate.VerificationResult != resultPassed:
		return nil, fmt.Errorf("%w: verification summary: result %q, want %q", ErrBadSignature, st.Predicate.VerificationResult, resultPassed)
	}
	return &st, nil
}

// envelopePayload decodes the payload of a DSSE envelope the way the
// verifier does after checking its signature.
func envelopePayload(envelope []byte) ([]byte, error) {
	var env ssldsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, err
	}
	if env.PayloadType != inTotoPayloadType {
		return nil, fmt.Errorf("payload type %q, want %q", env.PayloadType, inTotoPayloadType)
	}
	return env.DecodeB64Payload()
}

// dirHash converts an h1: hash to the in-toto dirHash digest: the same
// SHA-256, in lowercase hex.
func dirHash(h1 string) (string, error) {
	b64, ok := strings.CutPrefix(h1, "h1:")
	raw, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(raw) != 32 {
		return "", fmt.Errorf("zip hash %q is not an h1: hash", h1)
	}
	return hex.EncodeToString(raw), nil
}

// isHexDigest reports whether s is lowercase hex, of length n if n > 0.
func isHexDigest(s string, n int) bool {
	if s == "" || n > 0 && len(s) != n || len(s)%2 != 0 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// SignSummaries signs one statement whose subjects are the zips of every
// summary in sums (a summary without ZipSHA256 names its zip by dirHash
// alone: the h1: its files were hashed to, what the go command checks),
// which must share the verifier, policy and time: a re-verification run
// attests every version of a batch with one signature. The predicate's
// resourceUri is resourceURI (the run); its inputs are every summary's
// inputs. cosign verify-blob-attestation accepts the envelope for any one
// of the zips, as for a single summary.
func (s *Signer) SignSummaries(sums []Summary, resourceURI string) ([]byte, error) {
	bp := batchBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<20 {
			batchBufs.Put(bp)
		}
	}()
	payload, err := batchPayload((*bp)[:0], sums, resourceURI)
	if err != nil {
		return nil, err
	}
	*bp = payload
	// What dsse.WrapSigner(s.sv, inTotoPayloadType).SignMessage does,
	// without copying the payload into its pre-authentication encoding, and
	// with the envelope written directly (dsseEnvelope).
	pae := io.MultiReader(bytes.NewReader(paeHeader(inTotoPayloadType, len(payload))), bytes.NewReader(payload))
	sig, err := s.sv.SignMessage(pae)
	if err != nil {
		return nil, fmt.Errorf("signing verification summary: %w", err)
	}
	return append(dsseEnvelope(inTotoPayloadType, payload, sig), '\n'), nil
}
