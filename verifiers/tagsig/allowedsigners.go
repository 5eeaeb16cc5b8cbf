package tagsig

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// maxSSHConfig bounds an allowed_signers or revocation file.
const maxSSHConfig = 4 << 20

// krlMagic starts a binary OpenSSH key revocation list (PROTOCOL.krl).
const krlMagic = "SSHKRL\n\x00"

// allowedSigner is one line of an ssh allowed_signers file.
type allowedSigner struct {
	line        int
	principals  []string
	key         ssh.PublicKey
	keyBytes    string // key.Marshal(), for comparison
	namespaces  []string
	hasNS       bool // a namespaces option was given (possibly matching nothing)
	validAfter  time.Time
	validBefore time.Time
	afterText   string // option text as written, for error messages
	beforeText  string
}

// AddAllowedSigners adds the entries of an ssh allowed_signers file (see
// ssh-keygen(1), ALLOWED SIGNERS). Parsing is strict: an unknown option, an
// unquoted or repeated option value, a bad date, a negated principal or a
// line without a valid key is an error naming the line, and nothing from
// the file is added.
//
// cert-authority entries are refused with ErrUnsupportedFormat: ssh
// certificates are not verified by this package (see verifySSH), so a CA
// line could never admit anything and almost certainly means the
// configuration expects something this gate does not do.
//
// valid-after and valid-before times without a Z (or UTC) suffix are taken as
// UTC. ssh-keygen takes them in the machine's local time zone; a gate's
// verdict must not depend on the zone of the host it runs on, so write a Z
// to be unambiguous in both.
func (k *Keyring) AddAllowedSigners(data []byte) error {
	if len(data) > maxSSHConfig {
		return fmt.Errorf("allowed_signers: %d bytes exceeds the %d byte limit: %w", len(data), maxSSHConfig, ErrMalformed)
	}
	var added []allowedSigner
	for n, line := range bytes.Split(data, []byte("\n")) {
		s, err := parseAllowedSigner(line)
		if err != nil {
			kind := ErrMalformed
			if errors.Is(err, ErrUnsupportedFormat) {
				kind = ErrUnsupportedFormat
			}
			return fmt.Errorf("allowed_signers line %d: %v: %w", n+1, err, kind)
		}
		if s != nil {
			s.line = n + 1
			added = append(added, *s)
		}
	}
	k.signers = append(k.signers, added...)
	return nil
}

// parseAllowedSigner parses one line; it returns nil for blank and comment
// lines. Its errors do not name the line; the caller adds that.
func parseAllowedSigner(line []byte) (*allowedSigner, error) {
	line = bytes.TrimSpace(bytes.TrimSuffix(line, []byte("\r")))
	if len(line) == 0 || line[0] == '#' {
		return nil, nil
	}
	if i := bytes.IndexFunc(line, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }); i >= 0 {
		return nil, fmt.Errorf("control character at column %d", i+1)
	}
	if line[0] == '"' {
		return nil, errors.New("quoted principals are not supported")
	}
	sp := bytes.IndexAny(line, " \t")
	if sp < 0 {
		return nil, errors.New("want \"principals [options] keytype base64-key [comment]\"")
	}
	s := &allowedSigner{}
	for _, p := range strings.Split(string(line[:sp]), ",") {
		switch {
		case p == "":
			return nil, fmt.Errorf("empty principal in %q", line[:sp])
		case p[0] == '!':
			return nil, fmt.Errorf("negated principal %q is not supported", p)
		}
		s.principals = append(s.principals, p)
	}

	key, _, options, rest, err := ssh.ParseAuthorizedKey(line[sp:])
	if err != nil {
		return nil, fmt.Errorf("no valid options and public key after the principals: %v", err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("unexpected data after the key")
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, fmt.Errorf("a certificate is not an allowed signer key: %w", ErrUnsupportedFormat)
	}
	s.key = key
	s.keyBytes = string(key.Marshal())

	seen := map[string]bool{}
	for _, opt := range options {
		name, value, hasValue := strings.Cut(opt, "=")
		name = strings.ToLower(name) // option keywords are case-insensitive in ssh-keygen
		if seen[name] {
			return nil, fmt.Errorf("option %s given twice", name)
		}
		seen[name] = true
		if name == "cert-authority" {
			return nil, fmt.Errorf("cert-authority (ssh certificates) is not supported: %w", ErrUnsupportedFormat)
		}
		if !hasValue {
			return nil, fmt.Errorf("unknown option %q", opt)
		}
		v, err := dequote(value)
		if err != nil {
			return nil, fmt.Errorf("option %s: %v", name, err)
		}
		switch name {
		case "namespaces":
			s.hasNS = true
			for _, ns := range strings.Split(v, ",") {
				if ns == "" {
					return nil, fmt.Errorf("option namespaces: empty namespace in %q", v)
				}
				s.namespaces = append(s.namespaces, ns)
			}
		case "valid-after":
			if s.validAfter, err = parseSSHTime(v); err != nil {
				return nil, fmt.Errorf("option valid-after: %v", err)
			}
			s.afterText = v
		case "valid-before":
			if s.validBefore, err = parseSSHTime(v); err != nil {
				return nil, fmt.Errorf("option valid-before: %v", err)
			}
			s.beforeText = v
		default:
			return nil, fmt.Errorf("unknown option %q", name)
		}
	}
	if !s.validAfter.IsZero() && !s.validBefore.IsZero() && s.validBefore.Before(s.validAfter) {
		return nil, fmt.Errorf("valid-before %s is earlier than valid-after %s", s.beforeText, s.afterText)
	}
	return s, nil
}

// dequote strips the double quotes ssh-keygen requires around option values.
func dequote(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", fmt.Errorf("value %q must be in double quotes", v)
	}
	v = v[1 : len(v)-1]
	if strings.ContainsAny(v, "\"\\ \t") {
		return "", fmt.Errorf("value %q contains quotes, backslashes or spaces", v)
	}
	return v, nil
}

// parseSSHTime parses ssh-keygen's YYYYMMDD[Z], YYYYMMDDHHMM[Z] and
// YYYYMMDDHHMMSS[Z] (misc.c parse_absolute_time also accepts a "UTC"
// suffix). Times without a suffix are UTC here; see AddAllowedSigners.
func parseSSHTime(s string) (time.Time, error) {
	digits := s
	switch {
	case strings.HasSuffix(strings.ToUpper(s), "UTC"):
		digits = s[:len(s)-3]
	case strings.HasSuffix(s, "Z"), strings.HasSuffix(s, "z"):
		digits = s[:len(s)-1]
	}
	var layout string
	switch len(digits) {
	case 8:
		layout = "20060102"
	case 12:
		layout = "200601021504"
	case 14:
		layout = "20060102150405"
	default:
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", s)
	}
	if !allDigits(digits) {
		return time.Time{}, fmt.Errorf("%q is not YYYYMMDD[HHMM[SS]][Z]", s)
	}
	t, err := time.ParseInLocation(layout, digits, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a valid date: %v", s, err)
	}
	return t, nil
}

// AddSSHRevoked adds revoked ssh keys: one public key per line in
// authorized_keys format ("keytype base64 [comment]"), with blank lines and #
// comments, as ssh-keygen accepts for -r. A binary KRL is refused: only the
// key-list format is supported.
func (k *Keyring) AddSSHRevoked(data []byte) error {
	if len(data) > maxSSHConfig {
		return fmt.Errorf("ssh revocation list: %d bytes exceeds the %d byte limit: %w", len(data), maxSSHConfig, ErrMalformed)
	}
	if bytes.HasPrefix(data, []byte(krlMagic)) {
		return fmt.Errorf("ssh revocation list: binary KRL files are not supported, only the key-list format (one public key per line): %w", ErrUnsupportedFormat)
	}
	var keys []string
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(bytes.TrimSuffix(line, []byte("\r")))
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, options, _, err := ssh.ParseAuthorizedKey(line)
		if err != nil {
			return fmt.Errorf("ssh revocation list line %d: not a public key: %v: %w", n+1, err, ErrMalformed)
		}
		if len(options) > 0 {
			return fmt.Errorf("ssh revocation list line %d: options are not allowed: %w", n+1, ErrMalformed)
		}
		if _, ok := key.(*ssh.Certificate); ok {
			return fmt.Errorf("ssh revocation list line %d: certificates are not supported: %w", n+1, ErrUnsupportedFormat)
		}
		keys = append(keys, string(key.Marshal()))
	}
	if k.revoked == nil {
		k.revoked = map[string]bool{}
	}
	for _, kb := range keys {
		k.revoked[kb] = true
	}
	return nil
}

// matchPatternList reports whether s matches an OpenSSH pattern-list
// (match.c match_pattern_list): some pattern matches and no negated
// ("!pattern") one does.
func matchPatternList(s string, patterns []string) bool {
	got := false
	for _, p := range patterns {
		if neg, ok := strings.CutPrefix(p, "!"); ok {
			if matchPattern(s, neg) {
				return false
			}
			continue
		}
		if matchPattern(s, p) {
			got = true
		}
	}
	return got
}

// matchPattern is OpenSSH's glob: '*' matches any run, '?' one character.
func matchPattern(s, p string) bool {
	// Iterative glob with single backtrack point: linear in practice and
	// never exponential on hostile patterns.
	si, pi, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == '*':
			// Before the literal case: a '*' in s is a character, and one
			// in p a wildcard even where they meet.
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			si++
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
