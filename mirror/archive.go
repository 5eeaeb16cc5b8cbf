package mirror

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	modzip "golang.org/x/mod/zip"
)

// ModuleFiles returns the files of the module at commit under subdir (""
// for the repository root), for golang.org/x/mod/zip.Create: the files
// `git archive` puts in an archive of that tree (honouring export-ignore
// and the other .gitattributes rules, with core.autocrlf=input and
// core.eol=lf), and the repository root's LICENSE when subdir has none.
// That is what zip.CreateFromVCS collects, and what the go command
// collects from a git repository, so the module zip hashes as theirs would.
//
// It differs from CreateFromVCS in how it runs git, not in what it finds:
// with this mirror's git binary, environment and timeout; with "--" before
// the subdirectory; without a second process to ask whether the mirror is a
// git repository; and uncompressed (git archive -0), since every file is
// compressed again into the module zip. limit bounds the archive's size.
func (m *Mirror) ModuleFiles(ctx context.Context, commit, subdir string, limit int) ([]modzip.File, error) {
	if !isHexID(commit) {
		return nil, fmt.Errorf("%w: commit %q", ErrBadName, commit)
	}
	args := []string{"-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=zip", "-0", commit}
	if subdir != "" {
		args = append(args, "--", subdir)
	}
	out, err := m.runLimit(ctx, m.dir, limit, args...)
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		return nil, fmt.Errorf("git archive: %w", err)
	}
	prefix := ""
	if subdir != "" {
		prefix = strings.TrimSuffix(subdir, "/") + "/"
	}
	var files []modzip.File
	haveLicense := false
	for _, zf := range zr.File {
		name, ok := strings.CutPrefix(zf.Name, prefix)
		if !ok || name == "" || strings.HasSuffix(name, "/") {
			continue
		}
		files = append(files, archiveFile{name: name, f: zf})
		haveLicense = haveLicense || name == "LICENSE"
	}
	if !haveLicense && subdir != "" {
		// As the go command does for a module in a subdirectory.
		data, err := m.ReadFile(ctx, commit, "LICENSE", modzip.MaxLICENSE)
		switch {
		case err == nil:
			files = append(files, dataFile{name: "LICENSE", data: data})
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return files, nil
}

// archiveFile is a file of the git archive.
type archiveFile struct {
	name string
	f    *zip.File
}

func (a archiveFile) Path() string                 { return a.name }
func (a archiveFile) Lstat() (fs.FileInfo, error)  { return a.f.FileInfo(), nil }
func (a archiveFile) Open() (io.ReadCloser, error) { return a.f.Open() }

// dataFile is a file held in memory.
type dataFile struct {
	name string
	data []byte
}

func (d dataFile) Path() string                 { return d.name }
func (d dataFile) Lstat() (fs.FileInfo, error)  { return dataInfo(d), nil }
func (d dataFile) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(d.data)), nil }

type dataInfo dataFile

func (i dataInfo) Name() string       { return path.Base(i.name) }
func (i dataInfo) Size() int64        { return int64(len(i.data)) }
func (i dataInfo) Mode() fs.FileMode  { return 0o644 }
func (i dataInfo) ModTime() time.Time { return time.Time{} }
func (i dataInfo) IsDir() bool        { return false }
func (i dataInfo) Sys() any           { return nil }
