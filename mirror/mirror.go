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
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/modgate/modgate/internal/flock"
)

// ErrNotFound reports that the remote has no such tag, or the mirror no such
// object. It is permanent.
var ErrNotFound = errors.New("not found")

// ErrBadName reports a tag name or path that modgate refuses to pass to git.
var ErrBadName = errors.New("refused name")

// ErrTooLarge is a git command that printed more than its bound.
var ErrTooLarge = errors.New("output too large")

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
	// no hooks path from anywhere, no fsmonitor; check every object fetched.
	// Appended to the fresh .git/config in one write rather than with one
	// `git config` process per key (git merges repeated sections).
	if err := appendConfig(filepath.Join(tmp, ".git", "config"), mirrorConfig); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) && !isNotEmpty(err) {
		return nil, err
	}
	return m, nil
}

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }

// mirrorConfig is the local configuration of every mirror.
const mirrorConfig = `[gc]
	auto = 0
[core]
	hooksPath = /dev/null
	fsmonitor = false
[fetch]
	fsckObjects = true
[transfer]
	fsckObjects = true
`

func appendConfig(name, text string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

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
	// Every rule it breaks, so that the reason names what is wrong.
	var why []string
	for _, elem := range strings.Split(tag, "/") {
		if elem == "" || elem[0] == '-' || elem[0] == '.' {
			why = append(why, "empty path element, or one starting with '-' or '.'")
			break
		}
	}
	var chars []string
	for _, r := range tag {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._+/", r)
		if q := fmt.Sprintf("%q", r); !ok && !slices.Contains(chars, q) {
			chars = append(chars, q)
		}
	}
	if len(chars) > 0 {
		why = append(why, "characters not allowed: "+strings.Join(chars, " "))
	}
	if strings.Contains(tag, "..") {
		why = append(why, `contains ".."`)
	}
	for _, s := range []string{".lock", "/"} {
		if strings.HasSuffix(tag, s) {
			why = append(why, fmt.Sprintf("ends in %q", s))
		}
	}
	if len(why) > 0 {
		return bad(strings.Join(why, "; "))
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
	// Processes sharing a data directory never run two fetches into one
	// mirror.
	unlock, err := flock.Lock(m.dir + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	ref := "refs/tags/" + tag
	// The refspec starts with "+", so git never reads it as an option; the
	// remote follows "--". Only the tag, its commit and that commit's tree
	// are needed (--depth=1): the history of a large repository is not.
	// A server that cannot send a shallow pack (git's "dumb" HTTP, very old
	// servers) gets the plain fetch.
	fetch := func(extra ...string) error {
		args := append([]string{"fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules"}, extra...)
		_, err := m.run(ctx, m.dir, append(args, "--", m.remote, "+"+ref+":"+ref)...)
		return err
	}
	err = fetch("--depth=1")
	var ge *Error
	if errors.As(err, &ge) && strings.Contains(ge.Stderr, "not support shallow") {
		err = fetch()
	}
	if err != nil {
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
	o, err := m.object(ctx, "refs/tags/"+tag, maxTagObject)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: tag %q in mirror", ErrNotFound, tag)
		}
		return nil, err
	}
	t := &Tag{ID: o.id, Type: o.typ}
	if t.Type == "tag" {
		t.Raw = o.data
	}
	return t, nil
}

// maxTagObject bounds a tag object read (tagsig refuses larger ones).
const maxTagObject = 1 << 20

// ReadFile returns the contents of file at commit, refusing files larger
// than limit. A missing file is ErrNotFound.
func (m *Mirror) ReadFile(ctx context.Context, commit, file string, limit int64) ([]byte, error) {
	if !isHexID(commit) {
		return nil, fmt.Errorf("%w: commit %q", ErrBadName, commit)
	}
	if strings.ContainsAny(file, "\n\r") {
		return nil, fmt.Errorf("%w: file %q", ErrBadName, file)
	}
	o, err := m.object(ctx, commit+":"+file, limit)
	var big *tooBigError
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: %s at %.12s", ErrNotFound, file, commit)
	case errors.As(err, &big):
		return nil, fmt.Errorf("%s at %.12s is %d bytes, over the %d-byte limit", file, commit, big.size, limit)
	case err != nil:
		return nil, err
	case o.typ != "blob":
		return nil, fmt.Errorf("%w: %s at %.12s is a %s", ErrNotFound, file, commit, o.typ)
	}
	return o.data, nil
}

// object is one object read with `git cat-file --batch`.
type object struct {
	id, typ string
	data    []byte
}

type tooBigError struct{ size int64 }

func (e *tooBigError) Error() string { return fmt.Sprintf("object of %d bytes", e.size) }

// object reads the object name resolves to (a ref, or commit:path) with
// one `git cat-file --batch`: its id, type and content, refusing content
// over limit before reading it. The name goes to git on standard input, a
// line of its own, never as an argument. A name that resolves to nothing
// is ErrNotFound.
func (m *Mirror) object(ctx context.Context, name string, limit int64) (*object, error) {
	if strings.ContainsAny(name, "\n\r") {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, cctx, stop := m.command(ctx, m.dir, "cat-file", "--batch")
	defer stop()
	cmd.Stdin = strings.NewReader(name + "\n")
	var stderr limitedBuffer
	stderr.limit = 64 << 10
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	fail := func(err error) (*object, error) {
		cancel()
		cmd.Wait()
		return nil, err
	}
	r := bufio.NewReader(out)
	header, err := r.ReadString('\n')
	if err != nil {
		cancel()
		werr := cmd.Wait()
		if cctx.Err() != nil {
			werr = cctx.Err()
		}
		return nil, &Error{Args: []string{"cat-file", "--batch"}, Stderr: stderr.String(), Err: errors.Join(err, werr)}
	}
	f := strings.Fields(header)
	if len(f) == 2 && (f[1] == "missing" || f[1] == "ambiguous") {
		return fail(fmt.Errorf("%w: %s", ErrNotFound, name))
	}
	if len(f) != 3 || !isHexID(f[0]) {
		return fail(fmt.Errorf("git cat-file --batch: unexpected header %q", header))
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return fail(fmt.Errorf("git cat-file --batch: unexpected header %q", header))
	}
	if size > limit {
		return fail(&tooBigError{size: size})
	}
	o := &object{id: f[0], typ: f[1], data: make([]byte, size)}
	if _, err := io.ReadFull(r, o.data); err != nil {
		return fail(fmt.Errorf("git cat-file --batch: %w", err))
	}
	io.Copy(io.Discard, r) // the trailing newline
	if err := cmd.Wait(); err != nil {
		return nil, &Error{Args: []string{"cat-file", "--batch"}, Stderr: stderr.String(), Err: err}
	}
	return o, nil
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

// run runs git in dir (see command) and returns its standard output, at
// most maxOutput bytes.
func (m *Mirror) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return m.runLimit(ctx, dir, maxOutput, args...)
}

// runLimit is run with another bound on the output.
func (m *Mirror) runLimit(ctx context.Context, dir string, limit int, args ...string) ([]byte, error) {
	cmd, ctx, cancel := m.command(ctx, dir, args...)
	defer cancel()
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = limit, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if stdout.over {
		return nil, fmt.Errorf("%w: git %s: output over %d bytes", ErrTooLarge, args[0], limit)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %v)", ctx.Err(), m.timeout())
		}
		return nil, &Error{Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.Bytes(), nil
}

func (m *Mirror) timeout() time.Duration {
	if m.git.Timeout == 0 {
		return 10 * time.Minute
	}
	return m.git.Timeout
}

// command prepares git in dir, bounded by the configured timeout. Only the
// configured transport is allowed, interactive prompts are off, and the
// locale is fixed so messages can be recognised.
func (m *Mirror) command(ctx context.Context, dir string, args ...string) (*exec.Cmd, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout())
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
	return cmd, ctx, cancel
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

// limitedBuffer keeps the first limit bytes written to it. It is not a
// bytes.Buffer: exec would copy into that with its ReadFrom, past any limit.
type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.limit {
		b.over = true
		p = p[:max(0, b.limit-b.buf.Len())]
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }
