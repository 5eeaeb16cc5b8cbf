package oneline

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"", 0, ""},
		{"  a \n b\t\tc\r\n", 0, "a b c"},
		{"bell\a esc\x1b[31m del\x7f nul\x00", 0, "bell esc [31m del nul"},
		{"bad \xff utf8", 0, "bad ? utf8"},
		{"next line\u0085here", 0, "next line here"},
		{"abcdef", 4, "abcd…"},
		{"ab€d", 3, "ab…"}, // € is three bytes: cut before it
		{"abc", 3, "abc"},
	} {
		if got := String(tc.in, tc.max); got != tc.want {
			t.Errorf("String(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("a\nb\x1b\xff€", 5)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got := String(s, max)
		if strings.ContainsAny(got, "\n\r\t\x00\x1b\x7f") || !utf8.ValidString(got) || strings.Contains(got, "  ") {
			t.Fatalf("String(%q, %d) = %q", s, max, got)
		}
		if max > 0 && len(got) > max+len("…") {
			t.Fatalf("String(%q, %d) is %d bytes", s, max, len(got))
		}
	})
}
