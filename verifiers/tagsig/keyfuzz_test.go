package tagsig

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/modgate/modgate/internal/pgptest"
)

// The keyring files are configuration: written by people, copied between
// machines, sometimes by hand. These targets hold their loaders to their
// contract on any input: no panic, an error leaves the keyring as it was,
// and what is accepted is well-formed.

func FuzzAddAllowedSigners(f *testing.F) {
	line := strings.TrimSpace(string(readTag(f, "allowed_signers")))
	principal, key, _ := strings.Cut(line, " ")
	for _, s := range []string{
		line,
		"# comment\n\n" + line + "\r\n",
		principal + `,b@example.com namespaces="git,file",valid-after="20250101",valid-before="20300101Z" ` + key + " comment",
		principal + ` NAMESPACES="git" ` + key,
		principal + ` valid-after="202501011200UTC" ` + key,
		principal + ` cert-authority ` + key,
		`"quoted principal" ` + key,
		"!" + line,
		principal + ` namespaces=git ` + key,
		principal + ` valid-before="20250101",valid-after="20260101" ` + key,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k := NewKeyring("fuzz")
		if err := k.AddAllowedSigners(data); err != nil {
			if len(k.signers) != 0 {
				t.Fatalf("error %v, but %d signers added", err, len(k.signers))
			}
			return
		}
		for _, s := range k.signers {
			if s.key == nil || s.keyBytes != string(s.key.Marshal()) || len(s.principals) == 0 {
				t.Fatalf("line %d: accepted %+v", s.line, s)
			}
			for _, p := range append(append([]string(nil), s.principals...), s.namespaces...) {
				if p == "" || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
					t.Fatalf("line %d: accepted principal or namespace %q", s.line, p)
				}
			}
			if s.hasNS != (len(s.namespaces) > 0) {
				t.Fatalf("line %d: namespaces %q, hasNS %v", s.line, s.namespaces, s.hasNS)
			}
			if !s.validAfter.IsZero() && !s.validBefore.IsZero() && s.validBefore.Before(s.validAfter) {
				t.Fatalf("line %d: valid-before before valid-after", s.line)
			}
		}
		// Loading is line by line: the same input again doubles the list.
		if err := k.AddAllowedSigners(data); err != nil {
			t.Fatalf("second load: %v", err)
		}
	})
}

func FuzzAddSSHRevoked(f *testing.F) {
	_, key, _ := strings.Cut(strings.TrimSpace(string(readTag(f, "allowed_signers"))), " ")
	for _, s := range []string{key, "# c\n" + key + " comment\r\n\n", `restrict ` + key, krlMagic + "\x00\x01", "not a key"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k := NewKeyring("fuzz")
		if err := k.AddSSHRevoked(data); err != nil && len(k.revoked) != 0 {
			t.Fatalf("error %v, but %d keys revoked", err, len(k.revoked))
		}
	})
}

// FuzzAddOpenPGP feeds the loader armored input as is, or (armor set)
// the input's bytes as the body of a public key block, so that the fuzzer
// reaches the packet parsing and revocation handling past the armor's
// checksum. The keyring already holds the testdata key, so a failure must
// leave it, and its revocations, untouched.
func FuzzAddOpenPGP(f *testing.F) {
	pub := readTag(f, "openpgp-pub.asc")
	f.Add(pub, false)
	f.Add(append(append([]byte(nil), pub...), pub...), false)
	f.Add([]byte(pgpPrivateKeyBegin+"\n"), false)
	blk, err := armor.Decode(bytes.NewReader(pub))
	if err != nil {
		f.Fatal(err)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(blk.Body); err != nil {
		f.Fatal(err)
	}
	f.Add(body.Bytes(), true)
	f.Fuzz(func(t *testing.T, data []byte, armored bool) {
		if armored {
			data = pgptest.Armor(t, "PGP PUBLIC KEY BLOCK", pgptest.Bytes(data))
		}
		k := NewKeyring("fuzz")
		if err := k.AddOpenPGP(pub); err != nil {
			t.Fatal(err)
		}
		before, revs := k.pgp[0], len(k.pgp[0].Revocations)
		err := k.AddOpenPGP(data)
		if err != nil {
			if len(k.pgp) != 1 || k.pgp[0] != before || len(before.Revocations) != revs {
				t.Fatalf("error %v, but the keyring changed", err)
			}
			if !utf8.ValidString(err.Error()) && utf8.Valid(data) {
				t.Fatalf("error message not UTF-8: %q", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range k.pgp {
			fp := pgpFingerprint(e.PrimaryKey)
			if e.PrivateKey != nil || seen[fp] {
				t.Fatalf("accepted key %s twice or with private material", fp)
			}
			seen[fp] = true
		}
	})
}

// FuzzMatchPattern holds the iterative glob to the plain recursive
// definition (OpenSSH match.c match_pattern, on bytes).
func FuzzMatchPattern(f *testing.F) {
	for _, s := range [][2]string{{"git", "g*"}, {"git", "?i?"}, {"", "*"}, {"aab", "*a*b"}, {"ab", "a**?"}, {"a*", "a\\*"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 64 || len(p) > 64 {
			return
		}
		if got, want := matchPattern(s, p), globRef(s, p); got != want {
			t.Fatalf("matchPattern(%q, %q) = %v, want %v", s, p, got, want)
		}
	})
}

// globRef is the textbook definition by dynamic programming over
// suffixes: m[i][j] says whether s[i:] matches p[j:].
func globRef(s, p string) bool {
	m := make([][]bool, len(s)+1)
	for i := range m {
		m[i] = make([]bool, len(p)+1)
	}
	m[len(s)][len(p)] = true
	for i := len(s); i >= 0; i-- {
		for j := len(p) - 1; j >= 0; j-- {
			switch {
			case p[j] == '*':
				m[i][j] = m[i][j+1] || i < len(s) && m[i+1][j]
			case i < len(s) && (p[j] == '?' || p[j] == s[i]):
				m[i][j] = m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}
