package depsum

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/module"
)

// Bounds on the go.sum files ParseGoSum accepts. Large real go.sum files
// (kubernetes) hold a few thousand lines; the bounds keep hostile input from
// costing memory and lookups.
const (
	MaxGoSumSize  = 16 << 20
	MaxGoSumLines = 100_000
)

// hashSize is the size of an h1: hash (SHA-256), base64Size its length in
// base64.
const (
	hashSize   = 32
	base64Size = 44
)

// Line is one go.sum line: "path version h1:…" (the module zip's hash) or
// "path version/go.mod h1:…" (the hash of its go.mod alone).
type Line struct {
	Path    string
	Version string // without the "/go.mod" suffix
	GoMod   bool   // the line is for the go.mod file alone
	Hash    string // "h1:" and the base64 of 32 bytes
	Num     int    // 1-based line number in the go.sum; 0 when not from a file
}

// key is the line without its hash: what a database line must match.
func (l Line) key() string {
	if l.GoMod {
		return l.Path + " " + l.Version + "/go.mod"
	}
	return l.Path + " " + l.Version
}

// isKey reports whether s is l.key(), without making it.
func (l Line) isKey(s string) bool {
	rest, ok := strings.CutPrefix(s, l.Path)
	if !ok || len(rest) == 0 || rest[0] != ' ' {
		return false
	}
	rest, ok = strings.CutPrefix(rest[1:], l.Version)
	if !ok {
		return false
	}
	if l.GoMod {
		return rest == "/go.mod"
	}
	return rest == ""
}

// lineID is a line as a comparable value: equal lines, equal IDs.
type lineID struct {
	path, version string
	goMod         bool
	hash          string
}

func (l Line) id() lineID { return lineID{l.Path, l.Version, l.GoMod, l.Hash} }

// String is the line as go.sum writes it.
func (l Line) String() string { return l.key() + " " + l.Hash }

// Module is the module version the line is about.
func (l Line) Module() module.Version { return module.Version{Path: l.Path, Version: l.Version} }

// what names the hash a line carries, for messages.
func (l Line) what() string {
	if l.GoMod {
		return "go.mod hash"
	}
	return "module zip hash"
}

// ParseGoSum parses a go.sum strictly, as the go command writes it: one
// "path version[/go.mod] h1:<base64>" per line, fields separated by single
// spaces, LF line endings. The go command's own reader is lax (any white
// space, any hash prefix); this one refuses what the go command never writes,
// because go.sum comes from the repository being admitted:
//
//   - paths and versions must pass module.Check and be canonical
//     (pseudo-versions and +incompatible are canonical);
//   - only h1: hashes, of exactly 32 bytes in canonical base64: another hash
//     prefix (h2:, …) is refused, since nothing here could verify it;
//   - no carriage return, no blank line except trailing ones;
//   - at most MaxGoSumSize bytes and MaxGoSumLines lines.
//
// Duplicate lines are kept (the go command tolerates them). Every error wraps
// ErrBadGoSum and names the line.
func ParseGoSum(data []byte) ([]Line, error) {
	if len(data) > MaxGoSumSize {
		return nil, fmt.Errorf("%w: %d bytes, more than the limit of %d", ErrBadGoSum, len(data), MaxGoSumSize)
	}
	if i := bytes.IndexByte(data, '\r'); i >= 0 {
		n := bytes.Count(data[:i], []byte("\n")) + 1
		return nil, fmt.Errorf("%w: line %d: carriage return (CRLF line endings?); go.sum uses LF", ErrBadGoSum, n)
	}
	c := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		c++
	}
	if c > MaxGoSumLines {
		return nil, fmt.Errorf("%w: %d lines, more than the limit of %d", ErrBadGoSum, c, MaxGoSumLines)
	}
	var lines []Line
	blank := 0 // line number of the first blank line seen
	num := 0
	// go.sum lists a version's zip line and its go.mod line together:
	// module.Check (a third of the parse) runs once for both.
	var checked module.Version
	for len(data) > 0 {
		num++
		var text []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			text, data = data[:i], data[i+1:]
		} else {
			text, data = data, nil
		}
		if len(text) == 0 {
			if blank == 0 {
				blank = num
			}
			continue
		}
		if blank != 0 {
			return nil, fmt.Errorf("%w: line %d: blank line before the end of the file", ErrBadGoSum, blank)
		}
		l, err := parseLine(string(text), checked)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadGoSum, num, err)
		}
		l.Num = num
		checked = l.Module()
		lines = append(lines, l)
	}
	return lines, nil
}

// parseLine parses one go.sum line, without its newline. checked is a
// module version known to pass module.Check (or the zero Version).
func parseLine(s string, checked module.Version) (Line, error) {
	path, rest, ok1 := strings.Cut(s, " ")
	version, hash, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || path == "" || version == "" || hash == "" || strings.Contains(hash, " ") {
		return Line{}, fmt.Errorf("want \"path version[/go.mod] h1:hash\" separated by single spaces, have %s", quote(s))
	}
	l := Line{Path: path, Version: version, Hash: hash}
	if v, ok := strings.CutSuffix(l.Version, "/go.mod"); ok {
		l.Version, l.GoMod = v, true
	}
	if l.Module() != checked {
		if err := module.Check(l.Path, l.Version); err != nil {
			return Line{}, fmt.Errorf("%s", oneLine(err.Error()))
		}
	}
	if cv := module.CanonicalVersion(l.Version); cv != l.Version {
		return Line{}, fmt.Errorf("%s@%s: version is not canonical (want %s)", l.Path, quote(l.Version), cv)
	}
	if err := checkHash(l.Hash); err != nil {
		return Line{}, fmt.Errorf("%s@%s: %v", l.Path, l.Version, err)
	}
	return l, nil
}

// checkHash accepts "h1:" followed by the canonical base64 of 32 bytes.
func checkHash(h string) error {
	alg, b64, ok := strings.Cut(h, ":")
	if !ok {
		return fmt.Errorf("hash %s has no algorithm prefix; want h1:", quote(h))
	}
	if alg != "h1" {
		return fmt.Errorf("hash algorithm %s is not supported; only h1: hashes can be verified", quote(alg))
	}
	// Decoded and encoded again on the stack: the canonical text of 32
	// bytes is 44 characters.
	var text, again [base64Size]byte
	var raw [base64Size / 4 * 3]byte // what Decode may write: 33 bytes
	if len(b64) != base64Size {
		return fmt.Errorf("hash %s is not the base64 of %d bytes", quote(h), hashSize)
	}
	copy(text[:], b64)
	n, err := base64.StdEncoding.Strict().Decode(raw[:], text[:])
	if base64.StdEncoding.Encode(again[:], raw[:hashSize]); err != nil || n != hashSize || string(again[:]) != b64 {
		return fmt.Errorf("hash %s is not the base64 of %d bytes", quote(h), hashSize)
	}
	return nil
}

// quote quotes outside text for a message, bounded.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
