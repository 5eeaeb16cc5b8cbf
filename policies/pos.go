package policies

import (
	"strings"
	"unicode/utf8"
)

// Errors name the line and column in the policy file, not in the
// expression: CEL reports positions in the expression's text, which YAML
// may have moved (indentation, quotes, folded lines). The functions here map
// one to the other.

// scalar is a YAML scalar with what it takes to map an offset in its value
// back to a line and column of the file.
type scalar struct {
	value     string
	line, col int
	block     bool     // literal or folded block scalar: the value starts on the next line
	lines     [][]byte // of the file, split once per file
}

// pos returns the line and column in the file of the byte at offset off in
// the scalar's value. It walks value and source together, skipping in the
// source what YAML removed (indentation, line breaks, quotes, escapes), so
// it is exact for the usual forms (plain, quoted, literal and folded
// blocks) and close for the rest.
func (s scalar) pos(off int) (line, col int) {
	lines := s.lines
	l, c := s.line-1, s.col-1 // 0-based position in the source
	if s.block {
		l, c = s.line, 0
	}
	at := func() (byte, bool) {
		for l < len(lines) && c >= len(lines[l]) {
			l, c = l+1, 0
		}
		if l >= len(lines) {
			return 0, false
		}
		return lines[l][c], true
	}
	lastL, lastC := -1, 0 // the last character matched
	for i := 0; i < len(s.value) && i <= off; i++ {
		want := s.value[i]
		if want == '\n' || want == ' ' || want == '\t' {
			// A line break or a folded one: the source may have it, or
			// may have put a line break there instead.
			if b, ok := at(); ok && b == want && i < off {
				c++
			}
			continue
		}
		for {
			b, ok := at()
			if !ok {
				return s.line, s.col
			}
			if b == want || !isYAMLNoise(b) {
				break
			}
			c++
		}
		if i < off {
			lastL, lastC = l, c
			c++
		}
	}
	if off >= len(s.value) && lastL >= 0 {
		// Past the end (an unexpected end of the expression): just after
		// its last character, not on the next line.
		return lastL + 1, columnOf(lines[lastL], lastC+1)
	}
	if _, ok := at(); !ok {
		return s.line, s.col
	}
	return l + 1, columnOf(lines[l], c)
}

// isYAMLNoise reports bytes that YAML may drop between two characters of a
// scalar's value.
func isYAMLNoise(b byte) bool {
	return b == ' ' || b == '\t' || b == '\r' || b == '"' || b == '\'' || b == '\\'
}

// columnOf returns the 1-based column, in runes, of byte c of line.
func columnOf(line []byte, c int) int {
	return len([]rune(string(line[:c]))) + 1
}

// offsetOf returns the byte offset in text of a CEL location (1-based line,
// 0-based column in runes).
func offsetOf(text string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(text[off:], '\n')
		if i < 0 {
			return len(text)
		}
		off += i + 1
	}
	for n := 0; n < col && off < len(text); n++ {
		if text[off] == '\n' {
			break
		}
		_, size := utf8.DecodeRuneInString(text[off:])
		off += size
	}
	return off
}
