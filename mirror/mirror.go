// Package mirror keeps local git mirrors of the repositories modgate admits
// from, and reads tags, trees and blobs out of them with the git CLI.
//
// Everything here treats the repository and the names it is asked about as
// hostile: no value that came from a repository, a webhook or a user is ever
// placed where git would read it as an option (ref names are checked and come
// after "--end-of-options" or inside a refspec; paths follow "--"), transports
// other than the configured one are disabled, and every command has a timeout
// and bounded output.
//
// A mirror is a non-bare repository whose work tree stays empty: that is what
// golang.org/x/mod/zip.CreateFromVCS needs to build the module zip exactly as
// the go command would.
package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotFound reports that the remote has no such tag, or the mirror no such
// object. It is permanent.
var ErrNotFound = errors.New("not found")

// ErrBadName reports a tag name or path that modgate refuses to pass to git.
var ErrBadName = errors.New("refused name")

// maxOutput bounds what one git command may print to us; tag objects, go.mod
// files and tree listings are far smaller.
const maxOutput = 64 << 20

// Git runs the git binary with a fixed, minimal environment.
type Git struct {
	// Binary is the git executable; "git" when empty.
	Binary string
	// Timeout bounds each command; 10 minutes when zero.
	Timeout time.Duration
}

// Mirror is a local mirror of one remote repository.
type Mirror struct {
	git    Git
	dir    string // work-tree root; the repository is dir/.git
	remote string // normalized URL or absolute path
	scheme string // "file", "https" or "ssh": the only transport git may use
	mu     sync.Mutex
}

// Open returns the mirror of remote under root, creating it if needed. The
// directory name is derived from a hash of remote so that no part of a URL
// becomes a path.
func Open(ctx context.Context, g Git, root, remote, scheme string) (*Mirror, error) {
	sum := sha256.Sum256([]byte(remote))
	dir := filepath.Join(root, hex.EncodeToString(sum[:12]))
	m := &Mirror{git: g, dir: dir, remote: remote, scheme: scheme}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return m, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(root, ".init-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if _, err := m.run(ctx, tmp, "init", "--quiet"); err != nil {
		return nil, err
	}
	// Keep the mirror quiet and predictable: no automatic gc racing a fetch,
	// no hooks path from anywhere, no fsmonitor.
	for _, kv := range [][2]string{
		{"gc.auto", "0"}, {"core.hooksPath", "/dev/null"}, {"core.fsmonitor", "false"},
		{"fetch.fsckObjects", "true"}, {"transfer.fsckObjects", "true"},
	} {
		if _, err := m.run(ctx, tmp, "config", "--local", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) && !isNotEmpty(err) {
		return nil, err
	}
	return m, nil
}

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }

// Dir is the mirror's work-tree root.
func (m *Mirror) Dir() string { return m.dir }

// CheckTagName refuses tag names git would misread or that could not be a
// module version tag: it must be a valid ref component sequence, must not
// start with "-" or contain "..", "@{", control characters or glob/ref
// metacharacters.
func CheckTagName(tag string) error {
	bad := func(why string) error { return fmt.Errorf("%w: tag %q: %s", ErrBadName, tag, why) }
	if tag == "" {
		return bad("empty")
	}
	if len(tag) > 255 {
		return bad("longer than 255 bytes")
	}
	if strings.Contains(tag, "..") || strings.Contains(tag, "@{") || strings.HasSuffix(tag, ".lock") || strings.HasSuffix(tag, "/") {
		return bad(`contains "..", "@{", ends in ".lock" or "/"`)
	}
	for _, elem := range strings.Split(tag, "/") {
		if elem == "" || elem[0] == '-' || elem[0] == '.' {
			return bad("empty path element, or one starting with '-' or '.'")
		}
	}
	for _, r := range tag {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._+/", r)
		if !ok {
			return bad(fmt.Sprintf("character %q not allowed", r))
		}
	}
	return nil
}

// FetchTag fetches refs/tags/<tag> from the remote into the mirror,
// replacing a local tag of that name (so that a tag moved upstream is seen,
// and rejected later, rather than hidden). A tag the remote does not have is
// ErrNotFound; other failures are transient.
func (m *Mirror) FetchTag(ctx context.Context, tag string) error {
	if err := CheckTagName(tag); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	unlock, err := lockFile(m.dir + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	ref := "refs/tags/" + tag
	// The refspec starts with "+", so git never reads it as an option; the
	// remote follows "--".
	_, err = m.run(ctx, m.dir, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head",
		"--no-recurse-submodules", "--", m.remote, "+"+ref+":"+ref)
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) && (strings.Contains(ge.Stderr, "couldn't find remote ref") ||
			strings.Contains(ge.Stderr, "not our ref")) {
			return fmt.Errorf("%w: %s has no tag %q", ErrNotFound, m.remote, tag)
		}
		return err
	}
	return nil
}

// Tag is the object a tag ref points to.
type Tag struct {
	ID   string // object id the ref points to
	Type string // "tag" for an annotated tag, "commit" for a lightweight one
	Raw  []byte // the raw tag object when Type == "tag"
}

// ReadTag resolves refs/tags/<tag> in the mirror.
func (m *Mirror) ReadTag(ctx context.Context, tag string) (*Tag, error) {
	if err := CheckTagName(tag); err != nil {
		return nil, err
	}
	out, err := m.run(ctx, m.dir, "rev-parse", "--verify", "--quiet", "--end-of-options", "refs/tags/"+tag)
	if err != nil {
		return nil, fmt.Errorf("%w: tag %q in mirror", ErrNotFound, tag)
	}
	id := strings.TrimSpace(string(out))
	if !isHexID(id) {
		return nil, fmt.Errorf("git rev-parse: unexpected output %q", id)
	}
	typ, err := m.run(ctx, m.dir, "cat-file", "-t", id)
	if err != nil {
		return nil, err
	}
	t := &Tag{ID: id, Type: strings.TrimSpace(string(typ))}
	if t.Type == "tag" {
		if t.Raw, err = m.run(ctx, m.dir, "cat-file", "tag", id); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ReadFile returns the contents of file at commit, refusing files larger
// than limit. A missing file is ErrNotFound.
func (m *Mirror) ReadFile(ctx context.Context, commit, file string, limit int64) ([]byte, error) {
	if !isHexID(commit) {
		return nil, fmt.Errorf("%w: commit %q", ErrBadName, commit)
	}
	obj := commit + ":" + file
	size, err := m.run(ctx, m.dir, "cat-file", "-s", obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at %.12s", ErrNotFound, file, commit)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(size)), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("git cat-file -s: %v", err)
	}
	if n > limit {
		return nil, fmt.Errorf("%s at %.12s is %d bytes, over the %d-byte limit", file, commit, n, limit)
	}
	return m.run(ctx, m.dir, "cat-file", "blob", obj)
}

// TreeSize is the total size in bytes of the blobs under dir at commit ("" is
// the whole tree). It lets callers refuse an oversized module before git
// archive builds it in memory.
func (m *Mirror) TreeSize(ctx context.Context, commit, dir string) (int64, error) {
	if !isHexID(commit) {
		return 0, fmt.Errorf("%w: commit %q", ErrBadName, commit)
	}
	args := []string{"ls-tree", "-r", "-l", "-z", "--full-tree", commit}
	if dir != "" {
		args = append(args, "--", dir)
	}
	out, err := m.run(ctx, m.dir, args...)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, rec := range bytes.Split(out, []byte{0}) {
		// "<mode> SP <type> SP <object> SP+ <size> TAB <path>"
		meta, _, ok := bytes.Cut(rec, []byte{'\t'})
		if !ok {
			continue
		}
		f := strings.Fields(string(meta))
		if len(f) != 4 || f[1] != "blob" {
			continue
		}
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("git ls-tree: bad size %q", f[3])
		}
		total += n
	}
	return total, nil
}

// Error is a failed git command, with what it printed.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return fmt.Sprintf("git %s: %v: %s", e.Args[0], e.Err, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// run runs git in dir. Only the configured transport is allowed, interactive
// prompts are off, and the locale is fixed so messages can be recognised.
func (m *Mirror) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	timeout := m.git.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bin := m.git.Binary
	if bin == "" {
		bin = "git"
	}
	full := append([]string{
		"-c", "protocol.allow=never",
		"-c", "protocol." + m.scheme + ".allow=always",
		"-c", "core.askPass=",
		"-c", "credential.interactive=false",
	}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "LC_ALL=C", "LANG=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_PROTOCOL_FROM_USER=0", "GIT_NO_REPLACE_OBJECTS=1",
		"GIT_SSH_COMMAND=ssh -o BatchMode=yes",
	)
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxOutput, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stdout.over {
		return nil, fmt.Errorf("git %s: output over %d bytes", args[0], maxOutput)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %v)", ctx.Err(), timeout)
		}
		return nil, &Error{Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

func isHexID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

type limitedBuffer struct {
	bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		b.over = true
		p = p[:max(0, b.limit-b.Len())]
	}
	b.Buffer.Write(p)
	return len(p), nil
}

// lockFile takes an exclusive flock on name, so that processes sharing a
// data directory never run two fetches into one mirror.
func lockFile(name string) (unlock func(), err error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
