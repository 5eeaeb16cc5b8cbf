// Package oneline puts text that may come from outside (error messages of
// git, servers and parsers, reasons quoting hostile input) on one line,
// for a log field, a verdict line or an HTTP answer.
package oneline

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// String returns s with invalid UTF-8 as "?", control characters as
// spaces, runs of white space as one space, no leading or trailing space,
// and, when max > 0, cut to at most max bytes (on a character boundary,
// then "…").
func String(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if max > 0 && len(s) > max {
		i := max
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}
