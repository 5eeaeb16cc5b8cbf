package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/integrity"
)

// Record is what modgate keeps about an admitted version beside its files
// (<version>.verdict.json): the policy input it was admitted on and the
// decision. `modgate policy test` and `policy eval --all` replay it.
type Record struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	// EventID is the event whose admission published the version: a job
	// redelivered after a crash between publish and verdict finds its own
	// record and reports the admission, not a duplicate.
	EventID  string             `json:"event_id,omitempty"`
	Input    *policies.Input    `json:"input"`
	Decision *policies.Decision `json:"decision,omitempty"`
	Hashes   *Hashes            `json:"hashes"`
	// TagObject is the raw annotated tag the version was admitted from
	// (base64 in JSON), so that re-verification can check its signature
	// against the signers trusted then. Absent in records of versions
	// admitted before it was kept.
	TagObject []byte `json:"tag_object,omitempty"`
}

// SetPolicies replaces the policy set; nil turns the policy stage off
// (authorization then rests on the configuration's repositories and
// signers alone). Safe to call while admissions run: each admission uses
// the set it started the stage with.
func (p *Pipeline) SetPolicies(s *policies.Set) { p.policies.Store(s) }

// Policies returns the current policy set, or nil.
func (p *Pipeline) Policies() *policies.Set { return p.policies.Load() }

// evaluatePolicy builds the typed input and evaluates every policy that
// covers the module. Every denying or failing rule is one problem.
func (p *Pipeline) evaluatePolicy(ctx context.Context, j *Job) error {
	in, err := p.policyInput(ctx, j)
	if err != nil {
		return err
	}
	j.PolicyInput = in
	set := p.policies.Load()
	if set == nil {
		return nil
	}
	d := set.Evaluate(ctx, in, p.Now())
	j.Decision = d
	if d.Allowed {
		return nil
	}
	var errs []error
	for _, r := range d.Results {
		if r.Result == policies.Pass || r.Action == policies.Warn && r.Result == policies.Warned {
			continue
		}
		where := r.File + "/" + r.Rule
		if r.File == "" {
			where = "default"
		}
		errs = append(errs, fmt.Errorf("policy %s: %s: %s", where, r.Result, r.Message))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("policy denied the module"))
	}
	return reject(errs...)
}

// policyInput assembles what rules see from what earlier stages proved.
func (p *Pipeline) policyInput(ctx context.Context, j *Job) (*policies.Input, error) {
	in := &policies.Input{
		Module:     policies.NewModule(j.Module.Path, j.Module.Version, j.TagTime),
		Source:     "git",
		Repository: j.Repo,
		Tag:        policies.Tag{Name: j.Request.Tag, Time: j.TagTime},
	}
	if j.Request.Module != "" {
		in.Source, in.Tag = "upstream", policies.Tag{}
	}
	if s := j.Signer; s != nil {
		in.Tag.SignerType, in.Tag.Fingerprint, in.Tag.Principal, in.Tag.SignerGroup = s.Type, s.Fingerprint, s.Principal, s.KeyName
	}
	gm, err := policies.ParseGoMod(path.Join(j.Subdir, "go.mod"), j.GoMod)
	if err != nil {
		return nil, reject(fmt.Errorf("%w: %v", ErrBadGoMod, err))
	}
	in.GoMod = gm
	in.Licenses = j.Licenses
	for _, r := range gm.Requires {
		d := policies.Dependency{Path: r.Path, Version: r.Version, Direct: !r.Indirect,
			Public: !p.private.Match(r.Path)}
		m := module.Version{Path: r.Path, Version: r.Version}
		pub, err := p.store.Lookup(ctx, m)
		if err == nil && p.quarantined(ctx, m) {
			err = fs.ErrNotExist // quarantined: not admitted now
		}
		if err == nil {
			d.Admitted = true
			var info Info
			if json.Unmarshal(pub.Info, &info) == nil {
				d.Time = info.Time
			}
			if rec, err := p.readRecord(ctx, m); err == nil && rec.Input != nil {
				d.Licenses = rec.Input.Licenses
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		in.Dependencies = append(in.Dependencies, d)
	}
	return in, nil
}

// quarantinedStore is a store that can quarantine (store.Dir).
type quarantinedStore interface {
	Quarantined(context.Context, module.Version) (*store.Quarantine, error)
}

// quarantined reports whether a published m is quarantined; a store that
// cannot quarantine never is.
func (p *Pipeline) quarantined(ctx context.Context, m module.Version) bool {
	qs, ok := p.store.(quarantinedStore)
	if !ok {
		return false
	}
	q, err := qs.Quarantined(ctx, m)
	return err != nil || q != nil
}

// admitted reports whether m is published and not quarantined, with two
// stats where the store can (Lookup reads and hashes three files).
func (p *Pipeline) admitted(ctx context.Context, m module.Version) bool {
	if qs, ok := p.store.(quarantinedStore); ok {
		q, err := qs.Quarantined(ctx, m)
		return err == nil && q == nil
	}
	_, err := p.store.Lookup(ctx, m)
	return err == nil
}

// recordDoc is the .verdict.json of the version being published.
func (j *Job) recordDoc() ([]byte, error) {
	return json.MarshalIndent(&Record{
		Module: j.Module.Path, Version: j.Module.Version, EventID: j.Request.EventID,
		Input: j.PolicyInput, Decision: j.Decision,
		Hashes: &Hashes{Zip: j.ZipHash, Mod: j.ModHash}, TagObject: j.TagRaw,
	}, "", "  ")
}

// readRecord reads the record stored beside a published version.
func (p *Pipeline) readRecord(ctx context.Context, m module.Version) (*Record, error) {
	return ReadRecord(ctx, p.store, m)
}

// maxRecord bounds an admission record read.
const maxRecord = integrity.MaxRecord

// ReadRecord reads the record stored beside a published version.
// st is a Store, or anything else that reads a version's files the same
// way.
func ReadRecord(ctx context.Context, st interface {
	ReadFile(ctx context.Context, m module.Version, suffix string, limit int64, buf []byte) ([]byte, error)
}, m module.Version) (*Record, error) {
	data, err := st.ReadFile(ctx, m, store.DocVerdict, maxRecord, nil)
	if err != nil {
		return nil, err // names the version
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", m, err)
	}
	return &rec, nil
}
