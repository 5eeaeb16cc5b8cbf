package upstream

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// FuzzParseInfo checks that whatever parseInfo accepts, the go command
// (json.Unmarshal into its RevInfo) reads the same way.
func FuzzParseInfo(f *testing.F) {
	for _, s := range []string{
		`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z"}`,
		`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z","Origin":{"VCS":"git","URL":"https://x","Hash":"abc","Ref":"refs/tags/v1.0.0"}}`,
		`{"Version":"v2.0.0+incompatible","Time":"2026-03-01T12:00:00.5+01:00","Name":"abc","Short":"abc"}`,
		`{"version":"v1.0.0","Time":"2026-03-01T12:00:00Z"}`,
		`{"Version":"v1.0.0","Version":"v2.0.0","Time":"2026-03-01T12:00:00Z"}`,
		`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z"} x`,
		`{"Ver\u0073ion":"v1.0.0","Time":"2026-03-01T12:00:00Z"}`,
		`{"Version":"v1.0.0","\u017fhort":"x","Time":"2026-03-01T12:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := parseInfo(data)
		if err != nil {
			return
		}
		if module.CanonicalVersion(info.Version) != info.Version || info.Time.IsZero() {
			t.Fatalf("accepted %q as %+v", data, info)
		}
		var rev struct {
			Version string
			Time    time.Time
			Name    string
			Short   string
			Origin  json.RawMessage
		}
		if err := json.Unmarshal(data, &rev); err != nil {
			t.Fatalf("parseInfo accepts %q, json.Unmarshal does not: %v", data, err)
		}
		if rev.Version != info.Version || !rev.Time.Equal(info.Time) {
			t.Fatalf("%q: parseInfo reads %s %v, json.Unmarshal %s %v", data, info.Version, info.Time, rev.Version, rev.Time)
		}
	})
}

// FuzzParseList checks that a list is sorted, free of duplicates, and holds
// only canonical release or pre-release versions valid for the path.
func FuzzParseList(f *testing.F) {
	f.Add("example.com/m", []byte("v1.0.0\nv1.1.0 2026-03-01T12:00:00Z\nv0.0.0-20260301120000-abcdefabcdef\n"))
	f.Add("example.com/m/v2", []byte("v2.0.0\nv2.0.0+incompatible\nv1.0.0\n\n\n"))
	f.Add("gopkg.in/yaml.v3", []byte("v3.0.1\r\nv3.0.0\tx\nv2.4.0\n"))
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		list := parseList(path, data)
		if !slices.IsSortedFunc(list, semver.Compare) {
			t.Fatalf("not sorted: %q", list)
		}
		for i, v := range list {
			if i > 0 && v == list[i-1] {
				t.Fatalf("duplicate %s", v)
			}
			if module.CanonicalVersion(v) != v || module.IsPseudoVersion(v) || checkPathVersion(path, v) != nil {
				t.Fatalf("%s listed for %s", v, path)
			}
		}
	})
}
