// Package tagsig verifies the signature on an annotated git tag the way
// `git verify-tag` does, without running git, gpg or ssh-keygen.
//
// A tag object (the bytes of `git cat-file tag <sha>`) is parsed strictly by
// [Parse], which splits it into the signed payload and the armored signature
// with git's own rule ([Split]). A [Keyring] holds one configured group of
// trusted signers — OpenPGP public keys, an ssh allowed_signers file and an
// ssh revocation list — and [Keyring.Verify] checks a tag against it.
//
// The verdicts follow git's: an OpenPGP key that is expired or revoked at
// verification time is refused (git treats gpg's EXPKEYSIG and REVKEYSIG as
// failure), and ssh allowed_signers options (namespaces, valid-after,
// valid-before) are enforced at the tagger time, which is the verify-time git
// hands to ssh-keygen. Where this package is stricter than git it says so in
// the doc comment of the check. Every error wraps one of the sentinel errors
// below so that callers can classify it with [errors.Is]; all of them are
// permanent (retrying cannot change the verdict).
package tagsig

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them.
var (
	// ErrMalformed: the tag object, signature block or configuration could not
	// be parsed.
	ErrMalformed = errors.New("malformed")
	// ErrUnsigned: an annotated tag that carries no signature block.
	ErrUnsigned = errors.New("tag is not signed")
	// ErrUnknownSigner: no key in this keyring matches the signature. It is the
	// only error after which trying another keyring makes sense.
	ErrUnknownSigner = errors.New("unknown signer")
	// ErrBadSignature: the keyring knows the key but the cryptographic check
	// failed (tampered tag, wrong key usage, ...).
	ErrBadSignature = errors.New("bad signature")
	// ErrKeyRevoked: the signing key is revoked.
	ErrKeyRevoked = errors.New("key revoked")
	// ErrKeyExpired: the OpenPGP signing key (or the signature itself) is
	// expired at verification time.
	ErrKeyExpired = errors.New("key expired")
	// ErrNamespace: the ssh signature was not made for, or the allowed_signers
	// entry does not allow, the "git" namespace.
	ErrNamespace = errors.New("ssh namespace not allowed")
	// ErrNotValidAtTime: the tagger time is outside the ssh key's
	// valid-after/valid-before window.
	ErrNotValidAtTime = errors.New("ssh key not valid at tagger time")
	// ErrUnsupportedFormat: a signature or key format this package does not
	// verify (x509, ssh certificates, ...).
	ErrUnsupportedFormat = errors.New("unsupported format")
)

// MaxTagSize bounds the tag objects Parse accepts. Real release tags are a
// few kilobytes; the bound keeps hostile input from costing memory and time.
const MaxTagSize = 1 << 20

// Signature formats as git names them (gpg.format).
const (
	FormatOpenPGP = "openpgp"
	FormatSSH     = "ssh"
	FormatX509    = "x509"
)

// sigMarker is one armor type git recognises at the start of a line
// (gpg-interface.c: openpgp_sigs, x509_sigs, ssh_sigs).
type sigMarker struct {
	begin, end string
	format     string
}

var sigMarkers = []sigMarker{
	{"-----BEGIN PGP SIGNATURE-----", "-----END PGP SIGNATURE-----", FormatOpenPGP},
	{"-----BEGIN PGP MESSAGE-----", "-----END PGP MESSAGE-----", FormatOpenPGP},
	{"-----BEGIN SIGNED MESSAGE-----", "-----END SIGNED MESSAGE-----", FormatX509},
	{"-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----", FormatSSH},
}

// markerAt reports the marker that line (which runs to the end of the
// buffer, not just to its newline) starts with, as git's get_format_by_sig.
func markerAt(line []byte) *sigMarker {
	for i := range sigMarkers {
		if bytes.HasPrefix(line, []byte(sigMarkers[i].begin)) {
			return &sigMarkers[i]
		}
	}
	return nil
}

// Tag is a parsed annotated git tag object (the bytes of
// `git cat-file tag <sha>`).
type Tag struct {
	Object     string    // hex object id from the "object" header
	Type       string    // "commit", "tree", "blob" or "tag"
	Name       string    // "tag" header
	Tagger     string    // "Name <email>" part of the tagger header
	TaggerTime time.Time // from the tagger header (unix seconds + zone)
	Message    []byte    // message without the signature block
	Payload    []byte    // exactly the signed bytes: object start up to the signature's BEGIN line
	Signature  []byte    // armored signature block, nil if unsigned
	Format     string    // "openpgp", "ssh", "x509" or "" when unsigned
}

// Split separates a tag object into the signed payload and the signature
// block with git's parse_signed_buffer rule: the signature starts at the
// LAST line that starts with one of the four BEGIN markers and runs to the
// end of the buffer. Without such a line, payload is raw and sig is nil.
// Split does no validation; Parse does.
func Split(raw []byte) (payload, sig []byte) {
	match := -1
	for off := 0; off < len(raw); {
		if markerAt(raw[off:]) != nil {
			match = off
		}
		nl := bytes.IndexByte(raw[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	if match < 0 {
		return raw, nil
	}
	return raw[:match], raw[match:]
}

// malformed builds an ErrMalformed error for the tag object.
func malformed(format string, args ...any) error {
	return fmt.Errorf("tag object: %s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

// Parse parses an annotated tag object strictly. The headers must be exactly
// object, type, tag and tagger, in git's order, followed by an empty line
// before the message (or the end of the object). Parse is stricter than git
// in a few places, each because the extra freedom only serves to make two
// readers of the same object disagree:
//   - a tag without a tagger header is refused (git accepts very old ones);
//   - extra headers (gpgsig, ...) are refused;
//   - NUL bytes anywhere are refused;
//   - the BEGIN line must be exactly the marker, and nothing may follow the
//     matching END line: git hands trailing text to gpg/ssh-keygen, which
//     ignore it, so it would be shown as part of the tag yet be unsigned;
//   - a second signature block in the message is refused: git verifies only
//     the last one, other tools take the first.
//
// The returned Tag's byte slices alias raw.
func Parse(raw []byte) (*Tag, error) {
	if len(raw) > MaxTagSize {
		return nil, malformed("%d bytes exceeds the %d byte limit", len(raw), MaxTagSize)
	}
	if len(raw) == 0 {
		return nil, malformed("empty")
	}
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return nil, malformed("NUL byte at offset %d", i)
	}
	t := &Tag{}
	t.Payload, t.Signature = Split(raw)
	if t.Signature != nil {
		if err := checkSignatureBlock(t); err != nil {
			return nil, err
		}
	}

	rest := t.Payload
	var err error
	fields := []struct {
		name string
		dst  *string
	}{{"object", &t.Object}, {"type", &t.Type}, {"tag", &t.Name}}
	for _, f := range fields {
		if *f.dst, rest, err = header(rest, f.name); err != nil {
			return nil, err
		}
	}
	if !isHexID(t.Object) {
		return nil, malformed("object header: %q is not a 40 or 64 digit lower-case hex object id", t.Object)
	}
	switch t.Type {
	case "commit", "tree", "blob", "tag":
	default:
		return nil, malformed("type header: unknown object type %q", t.Type)
	}
	if t.Name == "" {
		return nil, malformed("tag header: empty tag name")
	}
	if i := strings.IndexFunc(t.Name, isControlOrSpace); i >= 0 {
		return nil, malformed("tag header: tag name %q contains a space or control character", t.Name)
	}
	var tagger string
	if tagger, rest, err = header(rest, "tagger"); err != nil {
		return nil, err
	}
	if t.Tagger, t.TaggerTime, err = parseIdent(tagger); err != nil {
		return nil, malformed("tagger header: %v", err)
	}

	switch {
	case len(rest) == 0:
		// Headers only: no message.
	case rest[0] == '\n':
		t.Message = rest[1:]
	default:
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		return nil, malformed("unexpected header %q after tagger (want an empty line)", truncate(line))
	}
	for off := 0; off < len(t.Message); {
		if m := markerAt(t.Message[off:]); m != nil {
			return nil, malformed("message contains a second signature block (%s); git verifies only the last one", m.begin)
		}
		nl := bytes.IndexByte(t.Message[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	return t, nil
}

// checkSignatureBlock sets t.Format and insists that the block is exactly
// BEGIN line … END line, so that no unsigned text rides along.
func checkSignatureBlock(t *Tag) error {
	m := markerAt(t.Signature)
	t.Format = m.format
	first, _, _ := bytes.Cut(t.Signature, []byte("\n"))
	if string(first) != m.begin {
		return malformed("signature BEGIN line %q has extra characters", truncate(first))
	}
	end := bytes.Index(t.Signature, []byte("\n"+m.end))
	if end < 0 {
		return malformed("signature block has no %s line", m.end)
	}
	after := t.Signature[end+1+len(m.end):]
	if len(after) > 0 && string(after) != "\n" {
		return malformed("%d bytes follow the signature's END line; they would not be covered by the signature", len(after))
	}
	return nil
}

// header reads one "name value\n" header line from the front of b.
func header(b []byte, name string) (value string, rest []byte, err error) {
	line, rest, found := bytes.Cut(b, []byte("\n"))
	if !found {
		return "", nil, malformed("%s header: missing or not terminated by a newline", name)
	}
	v, ok := bytes.CutPrefix(line, []byte(name+" "))
	if !ok {
		if len(line) == 0 {
			return "", nil, malformed("missing %s header (headers end early)", name)
		}
		return "", nil, malformed("missing %s header (found %q)", name, truncate(line))
	}
	return string(v), rest, nil
}

func isHexID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isControlOrSpace(r rune) bool {
	return r <= ' ' || r == 0x7f
}

// parseIdent parses git's ident line "Name <email> 1700000000 +0100" the way
// fsck_ident checks it.
func parseIdent(s string) (ident string, when time.Time, err error) {
	lt := strings.IndexByte(s, '<')
	gt := strings.IndexByte(s, '>')
	switch {
	case lt < 0 || gt < 0 || gt < lt:
		return "", time.Time{}, errors.New("want \"Name <email> seconds zone\"")
	case lt == 0 || s[lt-1] != ' ':
		return "", time.Time{}, errors.New("missing space before email")
	case strings.IndexByte(s[lt+1:gt], '<') >= 0 || strings.IndexByte(s[gt+1:], '<') >= 0 || strings.IndexByte(s[gt+1:], '>') >= 0:
		return "", time.Time{}, errors.New("bad email angle brackets")
	}
	ident = s[:gt+1]
	rest, ok := strings.CutPrefix(s[gt+1:], " ")
	if !ok {
		return "", time.Time{}, errors.New("missing space after email")
	}
	secs, zone, ok := strings.Cut(rest, " ")
	if !ok {
		return "", time.Time{}, errors.New("missing time zone")
	}
	if secs == "" || len(secs) > 1 && secs[0] == '0' || !allDigits(secs) {
		return "", time.Time{}, fmt.Errorf("bad timestamp %q", secs)
	}
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n > 1<<40 {
		return "", time.Time{}, fmt.Errorf("timestamp %q out of range", secs)
	}
	if len(zone) != 5 || zone[0] != '+' && zone[0] != '-' || !allDigits(zone[1:]) {
		return "", time.Time{}, fmt.Errorf("bad time zone %q", zone)
	}
	hh, _ := strconv.Atoi(zone[1:3])
	mm, _ := strconv.Atoi(zone[3:5])
	if mm >= 60 {
		return "", time.Time{}, fmt.Errorf("bad time zone %q", zone)
	}
	off := hh*3600 + mm*60
	if zone[0] == '-' {
		off = -off
	}
	return ident, time.Unix(n, 0).In(time.FixedZone(zone, off)), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncate keeps quoted snippets of hostile input short in error messages.
func truncate(b []byte) []byte {
	if len(b) > 60 {
		return append(b[:60:60], "..."...)
	}
	return b
}
