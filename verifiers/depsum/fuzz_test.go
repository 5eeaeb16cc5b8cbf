package depsum

import (
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/module"
)

// FuzzParseGoSum: ParseGoSum never panics, every error wraps ErrBadGoSum and
// is one line, and what it accepts is well-formed and survives a round trip.
func FuzzParseGoSum(f *testing.F) {
	f.Add([]byte(goodGoSum))
	f.Add([]byte("example.com/a v1.0.0 " + h1("x") + "\n\n"))
	f.Add([]byte("example.com/a v2.0.0+incompatible/go.mod h1:AAAA\r\n"))
	f.Add([]byte("gopkg.in/yaml.v3 v3.0.1 h2:" + h1("y")[3:]))
	if data, err := os.ReadFile("../../go.sum"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseGoSum(data)
		if err != nil {
			if !errors.Is(err, ErrBadGoSum) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("bad error: %q", err)
			}
			return
		}
		var b strings.Builder
		for _, l := range lines {
			if module.Check(l.Path, l.Version) != nil || checkHash(l.Hash) != nil || strings.HasSuffix(l.Version, "/go.mod") {
				t.Fatalf("accepted bad line %+v", l)
			}
			b.WriteString(l.String() + "\n")
		}
		again, err := ParseGoSum([]byte(b.String()))
		if err != nil || len(again) != len(lines) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range again {
			if again[i].String() != lines[i].String() {
				t.Fatalf("round trip changed line %d: %q → %q", i, lines[i], again[i])
			}
		}
	})
}

// FuzzCheckHash holds checkHash, which decodes on the stack, to the plain
// definition: "h1:" and the canonical base64 of 32 bytes.
func FuzzCheckHash(f *testing.F) {
	f.Add(h1("x"))
	f.Add("h1:" + h1("x")[3:46] + "B=")
	f.Add("h1:AAAA")
	f.Add("h2:" + h1("y")[3:])
	f.Fuzz(func(t *testing.T, h string) {
		want := false
		if b64, ok := strings.CutPrefix(h, "h1:"); ok {
			raw, err := base64.StdEncoding.Strict().DecodeString(b64)
			want = err == nil && len(raw) == 32 && base64.StdEncoding.EncodeToString(raw) == b64
		}
		if got := checkHash(h) == nil; got != want {
			t.Fatalf("checkHash(%q) accepts: %v, want %v", h, got, want)
		}
	})
}
