package policies

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// maxMessage bounds a rendered message.
const maxMessage = 2048

// message is a rule's message template: literal text and CEL expressions
// between "{{" and "}}", each type-checked at compile time like the rule
// itself, with the same variables (input, now) and the same cost limit.
// A template is data, not code that can run anything but CEL.
type message struct {
	parts []msgPart
}

type msgPart struct {
	lit string
	prg cel.Program // nil for literal text
}

func (s *Set) compileMessage(f *File, r *Rule) (message, []error) {
	var m message
	var errs []error
	text := r.Message
	for pos := 0; pos < len(text); {
		i := strings.Index(text[pos:], "{{")
		if i < 0 {
			m.parts = append(m.parts, msgPart{lit: text[pos:]})
			break
		}
		if i > 0 {
			m.parts = append(m.parts, msgPart{lit: text[pos : pos+i]})
		}
		start := pos + i + 2
		j := strings.Index(text[start:], "}}")
		if j < 0 {
			line, col := r.message.pos(pos + i)
			errs = append(errs, &Error{File: f.path, Line: line, Col: col, Rule: r.Name, Err: `message: "{{" without a closing "}}"`})
			break
		}
		expr := text[start : start+j]
		if strings.TrimSpace(expr) == "" {
			line, col := r.message.pos(pos + i)
			errs = append(errs, &Error{File: f.path, Line: line, Col: col, Rule: r.Name, Err: `message: empty "{{}}"`})
		} else {
			prg, perrs := s.program(f, r, r.message, start, expr, nil, nil)
			errs = append(errs, perrs...)
			m.parts = append(m.parts, msgPart{prg: prg})
		}
		pos = start + j + 2
	}
	return m, errs
}

// render renders the message; an expression that fails renders as
// "<error: …>" and never changes the rule's result.
func (m message) render(ctx context.Context, act cel.Activation) string {
	var b strings.Builder
	for _, p := range m.parts {
		if b.Len() >= maxMessage {
			break
		}
		if p.prg == nil {
			b.WriteString(p.lit)
			continue
		}
		v, _, err := p.prg.ContextEval(ctx, act)
		if err != nil {
			fmt.Fprintf(&b, "<error: %v>", err)
			continue
		}
		b.WriteString(format(v, 0))
	}
	s := b.String()
	if len(s) > maxMessage {
		s = s[:maxMessage-3] + "..."
	}
	return s
}

// format renders a CEL value for a message: strings as they are, lists
// comma-separated, times in RFC 3339.
func format(v ref.Val, depth int) string {
	switch x := v.(type) {
	case types.String:
		return string(x)
	case types.Timestamp:
		return x.Time.UTC().Format(time.RFC3339)
	case types.Duration:
		return x.Duration.String()
	case traits.Lister:
		if depth > 2 {
			return "[…]"
		}
		var parts []string
		it := x.Iterator()
		for n := 0; it.HasNext() == types.True; n++ {
			if n == 100 {
				parts = append(parts, "…")
				break
			}
			parts = append(parts, format(it.Next(), depth+1))
		}
		if depth > 0 {
			return "[" + strings.Join(parts, ", ") + "]"
		}
		return strings.Join(parts, ", ")
	case types.Null:
		return "null"
	}
	return fmt.Sprint(v.Value())
}
