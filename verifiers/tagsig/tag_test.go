package tagsig

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	hexID    = "8724a9623cfec2cddc761f745591c021e8e06bcc"
	hdr      = "object " + hexID + "\ntype commit\ntag v1.0.0\ntagger Rel Eng <releng@example.com> 1748779200 +0000\n"
	pgpBlock = "-----BEGIN PGP SIGNATURE-----\n\niIkEABYIADEWIQSZ\n=IdTL\n-----END PGP SIGNATURE-----\n"
	sshBlock = "-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n"
	x509Blk  = "-----BEGIN SIGNED MESSAGE-----\nMIAGCSqG\n-----END SIGNED MESSAGE-----\n"
)

func readTag(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tags", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr string // substring of the error; "" means success
		format  string
		message string
	}{
		{name: "unsigned", raw: hdr + "\nrelease\n", message: "release\n"},
		{name: "openpgp", raw: hdr + "\nrelease\n" + pgpBlock, format: "openpgp", message: "release\n"},
		{name: "ssh", raw: hdr + "\nrelease\n" + sshBlock, format: "ssh", message: "release\n"},
		{name: "x509", raw: hdr + "\nrelease\n" + x509Blk, format: "x509", message: "release\n"},
		{name: "pgp message marker", raw: hdr + "\nm\n-----BEGIN PGP MESSAGE-----\nxx\n-----END PGP MESSAGE-----\n", format: "openpgp", message: "m\n"},
		{name: "headers only", raw: hdr},
		{name: "empty message", raw: hdr + "\n"},
		{name: "signature right after blank line", raw: hdr + "\n" + pgpBlock, format: "openpgp"},
		{name: "signature without final newline", raw: hdr + "\nm\n" + strings.TrimSuffix(pgpBlock, "\n"), format: "openpgp", message: "m\n"},
		{name: "sha256 object id", raw: strings.Replace(hdr, hexID, strings.Repeat("ab", 32), 1) + "\nm\n", message: "m\n"},
		{name: "CRLF in message", raw: hdr + "\nline one\r\nline two\r\n" + pgpBlock, format: "openpgp", message: "line one\r\nline two\r\n"},
		{name: "indented marker is message text", raw: hdr + "\nquote:\n -----BEGIN PGP SIGNATURE-----\n", message: "quote:\n -----BEGIN PGP SIGNATURE-----\n"},

		{name: "empty", raw: "", wantErr: "empty"},
		{name: "CRLF headers", raw: strings.ReplaceAll(hdr, "\n", "\r\n") + "\r\nm\r\n", wantErr: "object header"},
		{name: "missing tagger", raw: "object " + hexID + "\ntype commit\ntag v1\n\nmsg\n", wantErr: "missing tagger header"},
		{name: "missing tagger, no message", raw: "object " + hexID + "\ntype commit\ntag v1\n", wantErr: "tagger header: missing"},
		{name: "headers out of order", raw: "type commit\nobject " + hexID + "\ntag v1\n", wantErr: "missing object header"},
		{name: "upper-case object id", raw: strings.Replace(hdr, hexID, strings.ToUpper(hexID), 1), wantErr: "object header"},
		{name: "short object id", raw: strings.Replace(hdr, hexID, hexID[:39], 1), wantErr: "object header"},
		{name: "object id with trailing space", raw: strings.Replace(hdr, hexID, hexID+" ", 1), wantErr: "object header"},
		{name: "unknown type", raw: strings.Replace(hdr, "type commit", "type blobby", 1), wantErr: "type header"},
		{name: "empty tag name", raw: strings.Replace(hdr, "tag v1.0.0", "tag ", 1), wantErr: "empty tag name"},
		{name: "tag name with space", raw: strings.Replace(hdr, "tag v1.0.0", "tag v1 0", 1), wantErr: "tag header"},
		{name: "tagger without email", raw: strings.Replace(hdr, "<releng@example.com> ", "", 1), wantErr: "tagger header"},
		{name: "tagger without timestamp", raw: strings.Replace(hdr, " 1748779200 +0000", "", 1), wantErr: "tagger header"},
		{name: "tagger zero-padded timestamp", raw: strings.Replace(hdr, " 1748779200", " 01748779200", 1), wantErr: "bad timestamp"},
		{name: "tagger bad zone", raw: strings.Replace(hdr, "+0000", "+00x0", 1), wantErr: "bad time zone"},
		{name: "tagger zone minutes", raw: strings.Replace(hdr, "+0000", "+0060", 1), wantErr: "bad time zone"},
		{name: "tagger huge timestamp", raw: strings.Replace(hdr, "1748779200", "99999999999999999999", 1), wantErr: "out of range"},
		{name: "tagger extra bracket", raw: strings.Replace(hdr, "Rel Eng <", "Rel <Eng <", 1), wantErr: "angle brackets"},
		{name: "extra header", raw: hdr + "gpgsig x\n\nmsg\n", wantErr: "unexpected header"},
		{name: "NUL byte", raw: hdr + "\nm\x00sg\n", wantErr: "NUL byte"},
		{name: "huge", raw: hdr + "\n" + strings.Repeat("a", MaxTagSize), wantErr: "limit"},
		{name: "signature in the middle followed by text", raw: hdr + "\nmsg\n" + pgpBlock + "more text\n", wantErr: "follow the signature's END line"},
		{name: "two signature blocks", raw: hdr + "\nmsg\n" + sshBlock + pgpBlock, wantErr: "second signature block"},
		{name: "BEGIN line with suffix", raw: hdr + "\nmsg\n-----BEGIN PGP SIGNATURE-----x\n-----END PGP SIGNATURE-----\n", wantErr: "extra characters"},
		{name: "BEGIN line with CR", raw: hdr + "\nmsg\n" + strings.ReplaceAll(pgpBlock, "\n", "\r\n"), wantErr: "extra characters"},
		{name: "no END line", raw: hdr + "\nmsg\n-----BEGIN PGP SIGNATURE-----\nabc\n", wantErr: "no -----END PGP SIGNATURE----- line"},
		{name: "mismatched END line", raw: hdr + "\nmsg\n-----BEGIN SSH SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n", wantErr: "no -----END SSH SIGNATURE----- line"},
		{name: "commit object (lightweight tag)", raw: "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nx\n", wantErr: "missing object header"},
		{name: "only a signature", raw: pgpBlock, wantErr: "object header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tag, err := Parse([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse succeeded, want error containing %q", tt.wantErr)
				}
				if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error %q, want ErrMalformed containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tag.Format != tt.format {
				t.Errorf("Format %q, want %q", tag.Format, tt.format)
			}
			if string(tag.Message) != tt.message {
				t.Errorf("Message %q, want %q", tag.Message, tt.message)
			}
			if (tag.Signature == nil) != (tt.format == "") {
				t.Errorf("Signature %q with format %q", tag.Signature, tt.format)
			}
			if got := string(tag.Payload) + string(tag.Signature); got != tt.raw {
				t.Errorf("Payload+Signature != raw")
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	raw := readTag(t, "ssh.tag")
	tag, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := Tag{
		Object:     hexID,
		Type:       "commit",
		Name:       "v2.0.0",
		Tagger:     "Rel Eng <releng@example.com>",
		TaggerTime: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Message:    []byte("release v2.0.0\n\nSecond paragraph of the release notes.\n"),
		Format:     "ssh",
	}
	if tag.Object != want.Object || tag.Type != want.Type || tag.Name != want.Name || tag.Tagger != want.Tagger ||
		!tag.TaggerTime.Equal(want.TaggerTime) || !bytes.Equal(tag.Message, want.Message) || tag.Format != want.Format {
		t.Errorf("Parse = %+v\nwant %+v", tag, want)
	}
	i := bytes.Index(raw, []byte("-----BEGIN SSH SIGNATURE-----"))
	if !bytes.Equal(tag.Payload, raw[:i]) || !bytes.Equal(tag.Signature, raw[i:]) {
		t.Errorf("payload/signature split at the wrong place")
	}

	// The zone is kept, the instant is the unix time.
	zoned := strings.Replace(hdr, "+0000", "-0130", 1)
	tag, err = Parse([]byte(zoned))
	if err != nil {
		t.Fatal(err)
	}
	if _, off := tag.TaggerTime.Zone(); off != -(3600+1800) || tag.TaggerTime.Unix() != 1748779200 {
		t.Errorf("TaggerTime %v (offset %d)", tag.TaggerTime, off)
	}
	for _, name := range []string{"openpgp.tag", "unsigned.tag"} {
		if _, err := Parse(readTag(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		at   int // index where the signature starts; -1: none
	}{
		{"none", hdr + "\nmsg\n", -1},
		{"empty", "", -1},
		{"one block", hdr + "\nmsg\n" + pgpBlock, len(hdr) + 5},
		{"last marker wins", hdr + "\nmsg\n" + sshBlock + pgpBlock, len(hdr) + 5 + len(sshBlock)},
		{"marker followed by text", hdr + "\nmsg\n" + pgpBlock + "tail\n", len(hdr) + 5},
		{"marker at offset 0", pgpBlock, 0},
		{"indented marker ignored", "a\n " + pgpBlock, -1},
		{"marker mid-line ignored", "a -----BEGIN PGP SIGNATURE-----\n", -1},
		{"marker with suffix counts (starts_with)", "a\n-----BEGIN SSH SIGNATURE-----junk", 2},
		{"marker on last line without newline", "a\n-----BEGIN SIGNED MESSAGE-----", 2},
		{"CRLF lines", "a\r\n-----BEGIN PGP SIGNATURE-----\r\nx\r\n", 3},
		{"truncated marker", "a\n-----BEGIN PGP SIG", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, sig := Split([]byte(tt.raw))
			if string(payload)+string(sig) != tt.raw {
				t.Fatalf("payload+sig != raw")
			}
			if tt.at < 0 {
				if sig != nil {
					t.Fatalf("sig = %q, want none", sig)
				}
				return
			}
			if len(payload) != tt.at {
				t.Fatalf("signature starts at %d, want %d", len(payload), tt.at)
			}
		})
	}
}

func TestVerifyUnsignedAndUnsupported(t *testing.T) {
	k := NewKeyring("empty")
	tag, err := Parse(readTag(t, "unsigned.tag"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(tag, time.Now()); !errors.Is(err, ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	tag, err = Parse([]byte(hdr + "\nm\n" + x509Blk))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(tag, time.Now()); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("x509: %v", err)
	}
	if _, err := k.Verify(nil, time.Now()); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil tag: %v", err)
	}
	for _, name := range []string{"openpgp.tag", "ssh.tag"} {
		tag, err := Parse(readTag(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Verify(tag, time.Now()); !errors.Is(err, ErrUnknownSigner) {
			t.Errorf("%s against an empty keyring: %v, want ErrUnknownSigner", name, err)
		}
	}
}
