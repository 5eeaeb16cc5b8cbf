package sumlog

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"
)

// maxRecord bounds a record's text. Two go.sum lines of a valid module path
// are far shorter; the bound keeps a hostile caller (or a corrupt length in
// the records file) from making the log allocate or serve megabytes.
const maxRecord = 8 << 10

// hashEncoding is strict so that a hash has one spelling: StdEncoding alone
// would accept non-zero padding bits and skip '\r' and '\n' inside the text.
var hashEncoding = base64.StdEncoding.Strict()

// parseRecord returns the module version whose go.sum lines text is, and
// fails unless text is exactly
//
//	"<path> <version> h1:<hash>\n<path> <version>/go.mod h1:<hash>\n"
//
// with a valid path, a canonical version and base64 hashes of 32 bytes. The
// go command reads back only lines that start with "<path> <version>", and a
// record is served for ever, so nothing else may get in.
func parseRecord(text []byte) (module.Version, error) {
	var m module.Version
	if len(text) > maxRecord {
		return m, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidRecord, len(text), maxRecord)
	}
	lines := strings.SplitAfter(string(text), "\n")
	if len(lines) != 3 || lines[2] != "" {
		return m, fmt.Errorf("%w: want 2 lines ending in newline, have %q", ErrInvalidRecord, text)
	}
	zipPath, zipVers, err := parseLine(lines[0], "")
	if err != nil {
		return m, fmt.Errorf("%w: line 1: %v", ErrInvalidRecord, err)
	}
	modPath, modVers, err := parseLine(lines[1], "/go.mod")
	if err != nil {
		return m, fmt.Errorf("%w: line 2: %v", ErrInvalidRecord, err)
	}
	if modPath != zipPath || modVers != zipVers {
		return m, fmt.Errorf("%w: line 2 is for %s@%s, line 1 for %s@%s", ErrInvalidRecord, modPath, modVers, zipPath, zipVers)
	}
	m = module.Version{Path: zipPath, Version: zipVers}
	if err := checkVersion(m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrInvalidRecord, err)
	}
	return m, nil
}

// parseLine splits one go.sum line "path version[suffix] h1:hash\n".
func parseLine(line, suffix string) (path, vers string, err error) {
	body, ok := strings.CutSuffix(line, "\n")
	if !ok {
		return "", "", fmt.Errorf("no newline")
	}
	f := strings.Split(body, " ")
	if len(f) != 3 {
		return "", "", fmt.Errorf("want 3 fields separated by single spaces, have %q", body)
	}
	vers, ok = strings.CutSuffix(f[1], suffix)
	if !ok || suffix == "" && strings.HasSuffix(vers, "/go.mod") {
		return "", "", fmt.Errorf("version %q: want a version followed by %q", f[1], suffix)
	}
	b64, ok := strings.CutPrefix(f[2], "h1:")
	if !ok {
		return "", "", fmt.Errorf("hash %q is not h1:", f[2])
	}
	h, err := hashEncoding.DecodeString(b64)
	if err != nil || len(h) != 32 || hashEncoding.EncodeToString(h) != b64 {
		return "", "", fmt.Errorf("hash %q is not base64 of 32 bytes", f[2])
	}
	return f[0], vers, nil
}

// checkVersion accepts only what the sumdb protocol can look up: a valid
// module path and a canonical semantic version (module.Check alone accepts
// "v1.2", which /lookup/ cannot express).
func checkVersion(m module.Version) error {
	if err := module.Check(m.Path, m.Version); err != nil {
		return err
	}
	if module.CanonicalVersion(m.Version) != m.Version {
		return fmt.Errorf("version %q is not canonical", m.Version)
	}
	return nil
}

// checkRecord validates text as the record of m.
func checkRecord(m module.Version, text []byte) error {
	if err := checkVersion(m); err != nil {
		return module.VersionError(m, fmt.Errorf("%w: %v", ErrInvalidRecord, err))
	}
	got, err := parseRecord(text)
	if err != nil {
		return module.VersionError(m, err)
	}
	if got != m {
		return module.VersionError(m, fmt.Errorf("%w: text is for %s", ErrInvalidRecord, got))
	}
	if _, err := tlog.FormatRecord(0, text); err != nil {
		// Unreachable after parseRecord; kept so that a record the server
		// could not format never gets into the log.
		return module.VersionError(m, fmt.Errorf("%w: %v", ErrInvalidRecord, err))
	}
	return nil
}

// recordHashes returns the two h1: hashes of a valid record, for messages.
func recordHashes(text []byte) (zip, mod string) {
	l1, l2, _ := bytes.Cut(text, []byte("\n"))
	field := func(l []byte) string {
		f := bytes.Fields(l)
		if len(f) != 3 {
			return "?"
		}
		return string(f[2])
	}
	return field(l1), field(l2)
}
