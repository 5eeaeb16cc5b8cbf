package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/tagsig"
)

// Request asks for one tag of one repository to be admitted.
type Request struct {
	// Repo is the repository URL or local path, as given by the caller.
	Repo string `json:"repo"`
	// Tag is the tag name, without "refs/tags/" ("v1.2.3", "sub/dir/v1.2.3").
	Tag string `json:"tag"`
	// EventID identifies the event that asked for this admission, for logs and
	// audit records.
	EventID string `json:"event_id,omitempty"`
	// Source says where the request came from ("cli", "webhook", "schedule").
	Source string `json:"source,omitempty"`

	// Module and Version, instead of Repo and Tag, ask for a public module
	// version from the upstream proxy.
	Module  string `json:"module,omitempty"`
	Version string `json:"version,omitempty"`
}

// Job is a request and everything the stages have learned about it so far.
// Each stage reads what earlier stages set and adds its own results.
type Job struct {
	Request

	// Set by fetch.
	Repo     string   // normalized repository
	Patterns []string // module path patterns the repository may publish
	// Roots are the repository's root module paths when its entry says
	// them (config.Repository.Roots: its bound Patterns, or its root);
	// nil when unknown.
	Roots   []string
	mirror  Mirror
	TagID   string // object id the tag ref points to
	TagType string // "tag" for an annotated tag
	TagRaw  []byte // raw annotated tag object
	Commit  string // commit the tag points to

	// Set by upstream (public modules): the proxy the files came from.
	Upstream string

	// Set by dependencies: every module version go.sum names.
	SumModules []module.Version

	// Set by identify.
	Tag     *tagsig.Tag
	Module  module.Version
	Subdir  string // module directory in the repository, "" for the root
	GoMod   []byte // go.mod at the tag
	TagTime time.Time

	// Set by tag-signature.
	Signer *tagsig.Signer

	// Set by module-zip.
	ZipFile string // the one zip that is checked, hashed and published
	ZipHash string // h1: of the zip
	ModHash string // h1: of go.mod

	// Set by sbom.
	Licenses  []string // the module's own licenses (SPDX ids)
	SBOM      []byte   // SPDX 2.3 JSON
	ZipSHA256 string   // hex SHA-256 of the zip

	// Set by sign: the documents published beside the version, by suffix.
	Docs map[string][]byte
	// Info and Record are the .info and .verdict.json published with the
	// version, made when the verification summary that names them is
	// signed.
	Info, Record []byte

	// Set by policy.
	PolicyInput *policies.Input
	Decision    *policies.Decision // nil when no policy set is loaded

	// Set by immutability.
	AlreadyPublished bool

	// Set by publish.
	Published bool
}

// Result is the outcome of an admission.
type Result string

const (
	// Admitted: every check passed and the version was published.
	Admitted Result = "admitted"
	// Duplicate: the version was already published with identical hashes;
	// nothing changed.
	Duplicate Result = "duplicate"
	// Rejected: a check failed; nothing was published. Permanent.
	Rejected Result = "rejected"
	// Errored: a transient failure (network, a busy server); try again.
	Errored Result = "error"
)

// Verdict is what an admission proved, or why it failed. It is printed by
// `modgate admit --json` and recorded as the audit trail.
type Verdict struct {
	Result  Result         `json:"result"`
	Module  string         `json:"module,omitempty"`
	Version string         `json:"version,omitempty"`
	Repo    string         `json:"repo"`
	Tag     string         `json:"tag"`
	TagID   string         `json:"tag_object,omitempty"`
	Commit  string         `json:"commit,omitempty"`
	Subdir  string         `json:"subdir,omitempty"`
	TagTime *time.Time     `json:"tag_time,omitempty"`
	Signer  *tagsig.Signer `json:"signer,omitempty"`
	Hashes  *Hashes        `json:"hashes,omitempty"`
	// Upstream is the proxy a public module was downloaded from.
	Upstream string `json:"upstream,omitempty"`
	// Dependencies says, for each public requirement in go.mod, whether
	// modgate has admitted it ("admitted"), has not yet ("pending") or
	// refused it ("refused"): a build through modgate resolves only when
	// all are admitted. modgate serve enqueues the pending ones.
	Dependencies []DependencyStatus `json:"dependencies,omitempty"`
	// Policy is the policy decision: every rule that applied, with its
	// result and message, and the digest of the policy set.
	Policy *policies.Decision `json:"policy,omitempty"`
	// Documents are the SBOM, its signature and bundle, and the signed
	// verification summary, with their digests.
	Documents []Document    `json:"documents,omitempty"`
	Problems  []Problem     `json:"problems,omitempty"`
	Stages    []StageResult `json:"stages"`
	EventID   string        `json:"event_id,omitempty"`
	Started   time.Time     `json:"started"`
	// DurationMS is the wall time of the whole admission in milliseconds.
	DurationMS float64 `json:"duration_ms"`
}

// DependencyStatus is the admission status of one requirement.
type DependencyStatus struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Status  string `json:"status"` // admitted, pending, refused
	Reason  string `json:"reason,omitempty"`
}

// Hashes are the go.sum hashes of an admitted version.
type Hashes struct {
	Zip string `json:"zip"`    // "h1:…" of the module zip
	Mod string `json:"go_mod"` // "h1:…" of go.mod
}

// Problem is one failed check.
type Problem struct {
	Check    string `json:"check"`
	Reason   string `json:"reason"`
	Security bool   `json:"security,omitempty"`
	// Transient is set when the failure may go away on retry.
	Transient bool `json:"transient,omitempty"`
}

// StageResult is the outcome and duration of one stage.
type StageResult struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"` // "ok", "rejected", "error", "skipped"
	DurationMS float64 `json:"duration_ms"`
	Detail     string  `json:"detail,omitempty"`
}

// documents lists the published documents with their URL paths.
func (j *Job) documents() []Document {
	if len(j.Docs) == 0 || !j.Published && !j.AlreadyPublished {
		return nil
	}
	escPath, err1 := module.EscapePath(j.Module.Path)
	escVer, err2 := module.EscapeVersion(j.Module.Version)
	if err1 != nil || err2 != nil {
		return nil
	}
	var docs []Document
	for _, suffix := range []string{store.DocSPDX, store.DocSPDXSig, store.DocSPDXBundle, store.DocInToto} {
		data, ok := j.Docs[suffix]
		if !ok {
			continue
		}
		sum := sha256.Sum256(data)
		docs = append(docs, Document{Name: j.Module.Version + suffix,
			Path: "/" + escPath + "/@v/" + escVer + suffix, SHA256: hex.EncodeToString(sum[:])})
	}
	return docs
}

// Lines returns one line per problem, naming module, version, check and
// reason: what `modgate admit` prints on stderr.
func (v *Verdict) Lines() []string {
	mod, ver := v.Module, v.Version
	if mod == "" {
		mod, ver = v.Repo, v.Tag
	}
	var lines []string
	for _, p := range v.Problems {
		prefix := ""
		if p.Security {
			prefix = "SECURITY: "
		}
		lines = append(lines, prefix+(&CheckError{Module: mod, Version: ver, Check: p.Check, Err: stringError(p.Reason)}).Error())
	}
	return lines
}

type stringError string

func (e stringError) Error() string { return string(e) }
