package depsum

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGoSum(t *testing.T) {
	hash := h1("x")
	for _, tc := range []struct {
		name  string
		data  string
		lines int    // lines parsed when valid
		err   string // substring of the error, "" if valid
	}{
		{"empty", "", 0, ""},
		{"one", "example.com/a v1.0.0 " + hash + "\n", 1, ""},
		{"go.mod", "example.com/a v1.0.0/go.mod " + hash + "\n", 1, ""},
		{"no final newline", "example.com/a v1.0.0 " + hash, 1, ""},
		{"trailing blank lines", "example.com/a v1.0.0 " + hash + "\n\n\n", 1, ""},
		{"duplicates kept", "example.com/a v1.0.0 " + hash + "\nexample.com/a v1.0.0 " + hash + "\n", 2, ""},
		{"pseudo-version", "example.com/a v0.0.0-20240101000000-abcdefabcdef " + hash + "\n", 1, ""},
		{"incompatible", "example.com/a v2.0.1+incompatible/go.mod " + hash + "\n", 1, ""},
		{"major suffix", "example.com/a/v3 v3.1.0 " + hash + "\n", 1, ""},
		{"gopkg.in", "gopkg.in/yaml.v3 v3.0.1 " + hash + "\n", 1, ""},
		{"upper case escaped later", "github.com/Azure/x v1.0.0 " + hash + "\n", 1, ""},

		{"blank line inside", "example.com/a v1.0.0 " + hash + "\n\nexample.com/b v1.0.0 " + hash + "\n", 0, "line 2: blank line"},
		{"CRLF", "example.com/a v1.0.0 " + hash + "\r\n", 0, "line 1: carriage return"},
		{"tab", "example.com/a\tv1.0.0 " + hash + "\n", 0, "single spaces"},
		{"two spaces", "example.com/a  v1.0.0 " + hash + "\n", 0, "single spaces"},
		{"leading space", " example.com/a v1.0.0 " + hash + "\n", 0, "single spaces"},
		{"trailing space", "example.com/a v1.0.0 " + hash + " \n", 0, "single spaces"},
		{"four fields", "example.com/a v1.0.0 " + hash + " x\n", 0, "single spaces"},
		{"comment", "// comment\n", 0, "single spaces"},
		{"h2", "example.com/a v1.0.0 h2:" + hash[3:] + "\n", 0, `hash algorithm "h2" is not supported`},
		{"no prefix", "example.com/a v1.0.0 " + hash[3:] + "\n", 0, "no algorithm prefix"},
		{"short hash", "example.com/a v1.0.0 h1:AAAA\n", 0, "base64 of 32 bytes"},
		{"bad base64", "example.com/a v1.0.0 h1:" + strings.Repeat("!", 44) + "\n", 0, "base64 of 32 bytes"},
		{"unpadded", "example.com/a v1.0.0 " + strings.TrimRight(hash, "=") + "\n", 0, "base64 of 32 bytes"},
		{"non-canonical base64", "example.com/a v1.0.0 h1:" + hash[3:45] + "B=\n", 0, "base64 of 32 bytes"},
		{"bad path", "Example.com/a v1.0.0 " + hash + "\n", 0, "malformed module path"},
		{"dotdot path", "example.com/../a v1.0.0 " + hash + "\n", 0, "malformed module path"},
		{"no v", "example.com/a 1.0.0 " + hash + "\n", 0, "line 1"},
		{"short version", "example.com/a v1.2 " + hash + "\n", 0, "not canonical"},
		{"build metadata", "example.com/a v1.2.0+meta " + hash + "\n", 0, "line 1"},
		{"wrong major", "example.com/a/v2 v1.0.0 " + hash + "\n", 0, "line 1"},
		{"go.mod twice", "example.com/a v1.0.0/go.mod/go.mod " + hash + "\n", 0, "line 1"},
		{"NUL", "example.com/a v1.0.0 " + hash + "\x00\n", 0, "base64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lines, err := ParseGoSum([]byte(tc.data))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(lines) != tc.lines {
					t.Fatalf("%d lines, want %d", len(lines), tc.lines)
				}
				for i, l := range lines {
					if l.Num != i+1 || !strings.Contains(tc.data, l.String()) {
						t.Errorf("line %d: %+v", i, l)
					}
				}
				return
			}
			if !errors.Is(err, ErrBadGoSum) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("want ErrBadGoSum with %q, got %v", tc.err, err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message not one line: %q", err)
			}
		})
	}
}

func TestParseGoSumLimits(t *testing.T) {
	line := "example.com/a v1.0.0 " + h1("x") + "\n"
	many := strings.Repeat(line, MaxGoSumLines)
	if _, err := ParseGoSum([]byte(many)); err != nil {
		t.Fatalf("MaxGoSumLines lines: %v", err)
	}
	if _, err := ParseGoSum([]byte(many + "example.com/a v1.0.0 " + h1("x"))); !errors.Is(err, ErrBadGoSum) {
		t.Fatalf("one line too many: %v", err)
	}
	if _, err := ParseGoSum(make([]byte, MaxGoSumSize+1)); !errors.Is(err, ErrBadGoSum) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("too large: %v", err)
	}
}

func TestParseGoSumFields(t *testing.T) {
	hash := h1("x")
	lines, err := ParseGoSum([]byte("example.com/a v1.0.0 " + hash + "\nexample.com/a v1.0.0/go.mod " + hash + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Line{
		{Path: "example.com/a", Version: "v1.0.0", Hash: hash, Num: 1},
		{Path: "example.com/a", Version: "v1.0.0", GoMod: true, Hash: hash, Num: 2},
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, lines[i], want[i])
		}
	}
}

// TestLineIsKey: isKey(s) is s == key(), which it does not build.
func TestLineIsKey(t *testing.T) {
	lines := []Line{
		{Path: "example.com/a", Version: "v1.0.0"},
		{Path: "example.com/a", Version: "v1.0.0", GoMod: true},
		{Path: "example.com/a/b", Version: "v1.0.0-20200101000000-abcdefabcdef"},
	}
	keys := []string{
		"", " ", "example.com/a", "example.com/a ", "example.com/a v1.0.0", "example.com/a v1.0.0/go.mod",
		"example.com/a v1.0.0 ", "example.com/a  v1.0.0", "example.com/a v1.0.0/go.mo", "example.com/ab v1.0.0",
		"example.com/a/b v1.0.0-20200101000000-abcdefabcdef", "example.com/a/b v1.0.0-20200101000000-abcdefabcdef/go.mod",
		"example.com/a v1.0.00", "example.com/a v1.0.0/go.modx",
	}
	for _, l := range lines {
		for _, k := range keys {
			if got, want := l.isKey(k), k == l.key(); got != want {
				t.Errorf("%+v isKey(%q) = %v, want %v", l, k, got, want)
			}
		}
	}
}
