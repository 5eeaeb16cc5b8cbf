package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/integrity"
)

// Document is one signed document published beside a version.
type Document struct {
	Name   string `json:"name"`   // file name in the store: <version><suffix>
	Path   string `json:"path"`   // URL path on modgate serve
	SHA256 string `json:"sha256"` // hex
}

// VerifierID names modgate in verification summaries.
const VerifierID = "https://github.com/modgate/modgate"

// lazyGenerator builds the SBOM generator on first use: syft's license
// scanner takes a moment to build, and an admission rejected before the
// SBOM stage should not pay for it.
type lazyGenerator struct {
	once sync.Once
	gen  *sbom.Generator
	err  error
	ver  string
}

func (l *lazyGenerator) get() (*sbom.Generator, error) {
	l.once.Do(func() { l.gen, l.err = sbom.NewGenerator("modgate", l.ver) })
	return l.gen, l.err
}

// Prepare builds in the background what the first SBOM would otherwise
// wait for (syft's license scanner, 1.5-2 s of CPU), so that in a
// long-running process the first admission after a start is as fast as
// the others. It logs "sbom generator ready" when done.
func (p *Pipeline) Prepare() {
	go func() {
		start := time.Now()
		if _, err := p.sbomGen.get(); err != nil {
			p.log.Warn("sbom generator", "err", err)
			return
		}
		p.log.Info("sbom generator ready", "took", time.Since(start).Round(time.Millisecond))
	}()
}

// buildSBOM makes the SPDX document of the exact zip being published, and
// the module's own licenses for policy.
func (p *Pipeline) buildSBOM(ctx context.Context, j *Job) error {
	licenses, err := sbom.Licenses(j.ZipFile, j.Module)
	if err != nil {
		return reject(fmt.Errorf("%w: reading license files: %v", ErrBadZip, err))
	}
	j.Licenses = licenses
	// One pass over the zip for its SHA-256, used by the SBOM and the
	// verification summary alike.
	if j.ZipSHA256, err = sbom.SHA256File(j.ZipFile); err != nil {
		return err
	}
	gen, err := p.sbomGen.get()
	if err != nil {
		return err
	}
	doc, err := gen.Generate(ctx, sbom.Module{
		Path: j.Module.Path, Version: j.Module.Version, ZipFile: j.ZipFile,
		ZipHash: j.ZipHash, ModHash: j.ModHash, ZipSHA256: j.ZipSHA256, Time: j.TagTime, Licenses: licenses,
		GoMod: j.GoMod,
	})
	if err != nil {
		return err
	}
	j.SBOM = doc
	return nil
}

// sign signs the SBOM (signature and bundle, as cosign sign-blob makes
// them) and a SLSA verification summary of the zip, with modgate's cosign
// key. Without a configured key the documents are published unsigned.
func (p *Pipeline) sign(ctx context.Context, j *Job) error {
	j.Docs = map[string][]byte{store.DocSPDX: j.SBOM}
	if p.signer == nil {
		return nil
	}
	sig, bundle, err := p.signer.SignBlob(j.SBOM)
	if err != nil {
		return err
	}
	// The admission record and the .info are made here, so that the
	// summary names them with the SBOM and its bundle: re-verification
	// evaluates the policies on the input the record holds, which must be
	// the input the version was admitted with, and finds any served file
	// that changed.
	if err := j.servedDocs(); err != nil {
		return err
	}
	sum := sbom.Summary{
		Module: j.Module.Path, Version: j.Module.Version, ZipSHA256: j.ZipSHA256, ZipHash: j.ZipHash,
		PolicyURI: VerifierID + "/policies", Verified: p.Now().UTC().Truncate(time.Second),
		VerifierID: VerifierID, VerifierVersion: p.version,
	}
	sum.Inputs, err = integrity.AdmissionInputs(j.Module, map[string][]byte{
		store.DocSPDX: j.SBOM, store.DocVerdict: j.Record, ".info": j.Info, store.DocSPDXBundle: bundle,
	})
	if err != nil {
		return err
	}
	if j.Decision != nil {
		sum.PolicyDigest = j.Decision.Digest
	}
	envelope, err := p.signer.SignSummary(sum)
	if err != nil {
		return err
	}
	j.Docs[store.DocSPDXSig] = sig
	j.Docs[store.DocSPDXBundle] = bundle
	j.Docs[store.DocInToto] = envelope
	return nil
}
