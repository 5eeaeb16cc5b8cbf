package pipeline

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/internal/gosum"
	"github.com/modgate/modgate/mirror"
	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/sumlog"
	"github.com/modgate/modgate/verifiers/tagsig"
)

// fetch checks that the repository is allowed and brings the tag into the
// local mirror.
func (p *Pipeline) fetch(ctx context.Context, j *Job) error {
	repo, err := config.NormalizeRepo(j.Request.Repo)
	if err != nil {
		return reject(fmt.Errorf("%w: %v", ErrRepoNotAllowed, err))
	}
	entry := p.cfg.RepositoryFor(repo)
	if entry == nil {
		return reject(fmt.Errorf("%w: %s", ErrRepoNotAllowed, repo))
	}
	patterns, err := entry.ModulesFor(repo)
	if err != nil {
		return reject(fmt.Errorf("%w: %v", ErrRepoNotAllowed, err))
	}
	j.Repo, j.Patterns, j.Roots = repo, patterns, entry.Roots(patterns)
	if err := mirror.CheckTagName(j.Request.Tag); err != nil {
		return reject(fmt.Errorf("%w: %v", ErrBadTag, err))
	}
	m, err := p.OpenMirror(ctx, repo)
	if err != nil {
		return err
	}
	j.mirror = m
	if err := m.FetchTag(ctx, j.Request.Tag); err != nil {
		if errors.Is(err, mirror.ErrNotFound) || errors.Is(err, mirror.ErrBadName) {
			return reject(fmt.Errorf("%w: %v", ErrBadTag, err))
		}
		return err
	}
	t, err := m.ReadTag(ctx, j.Request.Tag)
	if err != nil {
		return err
	}
	j.TagID, j.TagType, j.TagRaw = t.ID, t.Type, t.Raw
	return nil
}

// identify derives the module path and version from the tag and the go.mod
// it points to, and checks that the repository may publish that path.
func (p *Pipeline) identify(ctx context.Context, j *Job) error {
	if j.TagType != "tag" {
		return reject(fmt.Errorf("%w: refs/tags/%s points to a %s; only annotated, signed tags are admitted",
			ErrNotAnnotated, j.Request.Tag, j.TagType))
	}
	t, err := tagsig.Parse(j.TagRaw)
	if err != nil {
		return reject(fmt.Errorf("%w: %v", ErrBadTag, err))
	}
	if t.Name != j.Request.Tag {
		// A tag object copied under another ref name: its signature would
		// vouch for a different release.
		return security(fmt.Errorf("%w: tag object is named %q but was found at refs/tags/%s", ErrBadTag, t.Name, j.Request.Tag))
	}
	if t.Type != "commit" {
		return reject(fmt.Errorf("%w: tag points to a %s, not a commit", ErrBadTag, t.Type))
	}
	j.Tag, j.Commit, j.TagTime = t, t.Object, t.TaggerTime

	prefix, version := "", j.Request.Tag
	if i := strings.LastIndex(version, "/"); i >= 0 {
		prefix, version = version[:i], version[i+1:]
	}
	if err := checkVersion(version); err != nil {
		return reject(fmt.Errorf("%w: tag %q: %v", ErrBadVersion, j.Request.Tag, err))
	}
	dir, gomod, err := p.findGoMod(ctx, j, prefix, version)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(path.Join(dir, "go.mod"), gomod, nil)
	if err != nil {
		return reject(fmt.Errorf("%w: %v", ErrBadGoMod, err))
	}
	if f.Module == nil {
		return reject(fmt.Errorf("%w: %s has no module directive", ErrBadGoMod, path.Join(dir, "go.mod")))
	}
	mpath := f.Module.Mod.Path
	j.Module = module.Version{Path: mpath, Version: version}
	if err := module.CheckPath(mpath); err != nil {
		return reject(fmt.Errorf("%w: %v", ErrBadGoMod, err))
	}
	if err := module.Check(mpath, version); err != nil {
		msg := err.Error()
		if me := (*module.ModuleError)(nil); errors.As(err, &me) {
			msg = me.Err.Error() // the verdict line names module and version
		}
		if _, major, _ := module.SplitPathVersion(mpath); major == "" && semver.Compare(semver.Major(version), "v1") > 0 {
			msg += "; a module with a go.mod cannot be +incompatible: tag it with a /" + semver.Major(version) + " module path"
		}
		return reject(fmt.Errorf("%w: %s", ErrBadVersion, msg))
	}
	// The go command finds module <root>/<dir>[/vN] at tags <dir>/vX.Y.Z
	// with its go.mod in <dir> (or <dir>/vN): a tag for one directory
	// whose go.mod claims another's path would publish, under that path,
	// what the origin never serves for it.
	pathPrefix, _, _ := module.SplitPathVersion(mpath)
	if prefix != "" && !strings.HasSuffix(pathPrefix, "/"+prefix) {
		return reject(fmt.Errorf("%w: tag %s is for directory %s, but the go.mod there declares module %s, whose path does not end in /%s: the go command would never take this tag for it",
			ErrBadGoMod, j.Request.Tag, prefix, mpath, prefix))
	}
	if !config.MatchModule(j.Patterns, mpath) {
		return reject(fmt.Errorf("%w: %s may publish only %s, not %s",
			ErrModuleNotAllowed, j.Repo, strings.Join(j.Patterns, ","), mpath))
	}
	// When the repository's root module path is known, the module is
	// exactly <root>/<dir>: the one the go command would fetch from here.
	if len(j.Roots) > 0 {
		var want []string
		for _, root := range j.Roots {
			want = append(want, path.Join(root, prefix))
		}
		if !slices.Contains(want, pathPrefix) {
			return reject(fmt.Errorf("%w: tag %s of %s may publish only %s (its root module path and the tag's directory), not %s",
				ErrModuleNotAllowed, j.Request.Tag, j.Repo, strings.Join(want, ","), mpath))
		}
	}
	j.Subdir, j.GoMod = dir, gomod
	return nil
}

// checkVersion accepts canonical semantic versions only: no "v1.2", no
// build metadata (so never "+incompatible": that is derived, not tagged).
func checkVersion(v string) error {
	if !semver.IsValid(v) {
		return fmt.Errorf("%q is not a semantic version (vMAJOR.MINOR.PATCH)", v)
	}
	if semver.Build(v) != "" {
		return fmt.Errorf("%q has build metadata; tags carry none (+incompatible is derived, never tagged)", v)
	}
	if c := semver.Canonical(v); c != v {
		return fmt.Errorf("%q is not canonical; tag %s instead", v, c)
	}
	return nil
}

// findGoMod locates the module's go.mod for a tag "<prefix>/<version>": in
// <prefix>, or for v2 and above in the major subdirectory <prefix>/vN when
// that holds a go.mod for a /vN path, as the go command does.
func (p *Pipeline) findGoMod(ctx context.Context, j *Job, prefix, version string) (dir string, data []byte, err error) {
	read := func(dir string) ([]byte, error) {
		data, err := j.mirror.ReadFile(ctx, j.Commit, path.Join(dir, "go.mod"), modzip.MaxGoMod)
		if err != nil && !errors.Is(err, mirror.ErrNotFound) {
			var ge *mirror.Error
			if errors.As(err, &ge) {
				return nil, err // git failed: transient
			}
			return nil, reject(fmt.Errorf("%w: %v", ErrBadGoMod, err)) // too large
		}
		return data, err
	}
	if major := semver.Major(version); major != "v0" && major != "v1" {
		sub := path.Join(prefix, major)
		data, err := read(sub)
		if err == nil && strings.HasSuffix(modfile.ModulePath(data), "/"+major) {
			return sub, data, nil
		}
		if err != nil && !errors.Is(err, mirror.ErrNotFound) {
			return "", nil, err
		}
	}
	data, err = read(prefix)
	if errors.Is(err, mirror.ErrNotFound) {
		where := prefix
		if where == "" {
			where = "the repository root"
		}
		return "", nil, reject(fmt.Errorf("%w: no go.mod in %s at %.12s", ErrBadGoMod, where, j.Commit))
	}
	return prefix, data, err
}

// verifySignature checks the tag's signature against the signer groups
// configured for the module path, with their key files as they are now
// (ReloadSigners). Files that do not load are an error, not a rejection:
// the admission is tried again later, with the keys they then hold.
func (p *Pipeline) verifySignature(ctx context.Context, j *Job) error {
	if j.Tag.Signature == nil {
		return reject(fmt.Errorf("%w: tag %s", tagsig.ErrUnsigned, j.Request.Tag))
	}
	if _, err := p.ReloadSigners(); err != nil {
		return err
	}
	s, err := p.signers.Load().trusted(j.Module.Path, j.Tag, p.Now())
	if err != nil {
		return err
	}
	j.Signer = s
	return nil
}

// trusted returns the signer of tag if a signer group configured for
// modPath holds its key at time now. Its errors are rejections, security
// ones for a bad signature, a revoked key or the key of another group.
func (ss *signers) trusted(modPath string, tag *tagsig.Tag, now time.Time) (*tagsig.Signer, error) {
	if tag.Signature == nil {
		return nil, reject(fmt.Errorf("%w: tag %s", tagsig.ErrUnsigned, tag.Name))
	}
	var firstErr error
	authorized := 0
	for _, g := range ss.groups {
		if !g.globs.Match(modPath) {
			continue
		}
		authorized++
		s, err := g.ring.Verify(tag, now)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, tagsig.ErrUnknownSigner) && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		if errors.Is(firstErr, tagsig.ErrBadSignature) || errors.Is(firstErr, tagsig.ErrKeyRevoked) {
			return nil, security(firstErr)
		}
		return nil, reject(firstErr)
	}
	// No authorized group knows the key. Say whose it is, if anyone's: a key
	// of another team signing this path is worth a security event.
	for _, g := range ss.groups {
		if g.globs.Match(modPath) {
			continue
		}
		if s, err := g.ring.Verify(tag, now); err == nil {
			return nil, security(fmt.Errorf("%w: signed by %s key %s of signer group %q, which may sign only %s",
				ErrUntrustedSigner, s.Type, s.Fingerprint, g.name, strings.Join(g.patterns, ",")))
		}
	}
	if authorized == 0 {
		return nil, reject(fmt.Errorf("%w %s", errNoSignerConfigured, modPath))
	}
	return nil, reject(fmt.Errorf("%w: %s signature by a key that no signer group for %s holds", ErrUntrustedSigner, tag.Format, modPath))
}

// archiveOverhead bounds what an uncompressed git archive adds to the
// blobs it holds (headers, names, directory entries) for any module zip
// can hold (modzip: at most 500 MB of files).
const archiveOverhead = 64 << 20

// buildZip builds the module zip once, from the tag's commit, with
// golang.org/x/mod/zip, checks it, and hashes it. This file is what gets
// published.
func (p *Pipeline) buildZip(ctx context.Context, j *Job) error {
	size, err := j.mirror.TreeSize(ctx, j.Commit, j.Subdir)
	if err != nil {
		return err
	}
	if size > modzip.MaxZipFile {
		return reject(fmt.Errorf("%w: files under %q total %d bytes, over the %d-byte module limit", ErrBadZip, j.Subdir, size, modzip.MaxZipFile))
	}
	// The archive is uncompressed: the tree's blobs, plus a header per file.
	files, err := j.mirror.ModuleFiles(ctx, j.Commit, j.Subdir, int(size)+archiveOverhead)
	if errors.Is(err, mirror.ErrTooLarge) {
		return reject(fmt.Errorf("%w: files under %q: %v", ErrBadZip, j.Subdir, err))
	}
	if err != nil {
		return err // our mirror or git is broken: transient
	}
	f, err := os.CreateTemp(p.tmpDir, "module-*.zip")
	if err != nil {
		return err
	}
	j.ZipFile = f.Name()
	err = modzip.Create(f, j.Module, files)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.As(err, new(*fs.PathError)) || errors.As(err, new(*os.SyscallError)) {
			return err // writing the temporary zip failed: transient
		}
		return reject(fmt.Errorf("%w: %v", ErrBadZip, err))
	}
	if _, err := modzip.CheckZip(j.Module, j.ZipFile); err != nil {
		return reject(fmt.Errorf("%w: %v", ErrBadZip, err))
	}
	if j.ZipHash, err = dirhash.HashZip(j.ZipFile, dirhash.Hash1); err != nil {
		return err
	}
	// The .mod file served must be the go.mod inside the zip; a
	// .gitattributes eol rule could make git archive rewrite it.
	inZip, err := readZipGoMod(j.ZipFile, j.Module)
	if err != nil {
		return reject(fmt.Errorf("%w: %v", ErrBadZip, err))
	}
	if !bytes.Equal(inZip, j.GoMod) {
		return reject(fmt.Errorf("%w: go.mod in the zip differs from go.mod at the tag (a .gitattributes eol rule?)", ErrBadZip))
	}
	j.ModHash, err = HashGoMod(j.GoMod)
	return err
}

// goSumRecord is the version's go.sum lines, the checksum log's record.
func (j *Job) goSumRecord() []byte {
	m := j.Module
	return []byte(m.Path + " " + m.Version + " " + j.ZipHash + "\n" + m.Path + " " + m.Version + "/go.mod " + j.ModHash + "\n")
}

// HashGoMod returns the go.sum hash of a go.mod file ("h1:…").
func HashGoMod(gomod []byte) (string, error) { return gosum.ModHash(gomod), nil }

func readZipGoMod(zipFile string, m module.Version) ([]byte, error) {
	zr, err := zip.OpenReader(zipFile)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	name := m.Path + "@" + m.Version + "/go.mod"
	for _, f := range zr.File {
		if f.Name == name {
			rc, err := f.Open()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(io.LimitReader(rc, modzip.MaxGoMod+1))
		}
	}
	return nil, fmt.Errorf("zip has no %s", name)
}

// checkImmutable compares the version's hashes with what is already
// published. Identical: a no-op duplicate. Different: a moved or re-created
// tag, a security event; the published bytes stay as they are.
func (p *Pipeline) checkImmutable(ctx context.Context, j *Job) error {
	// The checksum log is the record clients have seen: a version it holds
	// with other hashes is a moved tag even if the store lost its files.
	if p.sumlog != nil {
		_, text, err := p.sumlog.Lookup(ctx, j.Module)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		case string(text) != string(j.goSumRecord()):
			return security(fmt.Errorf("%w: the checksum log holds %q, but %s now gives zip %s go.mod %s",
				ErrMovedTag, text, j.source(), j.ZipHash, j.ModHash))
		}
	}
	pub, err := p.store.Lookup(ctx, j.Module)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if pub.ZipHash == j.ZipHash && pub.ModHash == j.ModHash {
		j.AlreadyPublished = true
		return nil
	}
	return security(fmt.Errorf("%w: published zip %s go.mod %s, but %s now gives zip %s go.mod %s",
		ErrMovedTag, pub.ZipHash, pub.ModHash, j.source(), j.ZipHash, j.ModHash))
}

// source names where the job's bytes came from, for messages.
func (j *Job) source() string {
	if j.Request.Module != "" {
		return "upstream " + j.Upstream
	}
	return fmt.Sprintf("tag %s (commit %.12s)", j.Request.Tag, j.Commit)
}

// Info is the .info document: the GOPROXY protocol's Version and Time, and
// the Origin the go command records (go help goproxy, go list -m -json).
type Info struct {
	Version string    `json:"Version"`
	Time    time.Time `json:"Time"`
	Origin  *Origin   `json:"Origin,omitempty"`
}

// Origin says where a version came from.
type Origin struct {
	VCS    string `json:"VCS"`
	URL    string `json:"URL"`
	Subdir string `json:"Subdir,omitempty"`
	Hash   string `json:"Hash"`
	Ref    string `json:"Ref"`
}

// infoDoc is the .info of the version being published.
func (j *Job) infoDoc() ([]byte, error) {
	in := Info{Version: j.Module.Version, Time: j.TagTime.UTC()}
	if j.Repo != "" {
		in.Origin = &Origin{VCS: "git", URL: j.Repo, Subdir: j.Subdir, Hash: j.Commit, Ref: "refs/tags/" + j.Request.Tag}
	}
	return json.Marshal(in)
}

// servedDocs makes the version's .info and admission record (j.Info,
// j.Record) once: sign makes them when modgate signs, since its
// verification summary names them, and publish otherwise.
func (j *Job) servedDocs() (err error) {
	if j.Info != nil {
		return nil
	}
	if j.Record, err = j.recordDoc(); err != nil {
		return err
	}
	j.Info, err = j.infoDoc()
	return err
}

// publish writes the version into the store; the store links each file into
// place and never overwrites.
func (p *Pipeline) publish(ctx context.Context, j *Job) error {
	if err := j.servedDocs(); err != nil {
		return err
	}
	docs := map[string][]byte{store.DocVerdict: j.Record}
	for suffix, data := range j.Docs {
		docs[suffix] = data
	}
	v := &store.Version{Module: j.Module, Info: j.Info, Mod: j.GoMod, ZipFile: j.ZipFile, ZipHash: j.ZipHash, Docs: docs}
	if p.sumlog != nil {
		// Between the durable files and the version list, so that a listed
		// version always has its record, and a redelivered job completes a
		// publish that crashed in between (Append is idempotent).
		v.Record = func(ctx context.Context) error {
			_, err := p.sumlog.Append(ctx, j.Module, j.goSumRecord())
			return err
		}
	}
	created, err := p.store.Publish(ctx, v)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, sumlog.ErrConflict) {
		return security(fmt.Errorf("%w: %v", ErrMovedTag, err))
	}
	if err != nil {
		return err
	}
	j.Published = created
	if !created && j.Request.EventID != "" {
		// Published by this very event, whose job died before its verdict
		// was recorded: the redelivery finishes that admission.
		if rec, err := p.readRecord(ctx, j.Module); err == nil && rec.EventID == j.Request.EventID {
			j.Published = true
		}
	}
	j.AlreadyPublished = j.AlreadyPublished || !created
	return nil
}
