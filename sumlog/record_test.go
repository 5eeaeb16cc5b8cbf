package sumlog

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/tlog"
)

var (
	xv1  = module.Version{Path: "corp.example/x", Version: "v1.0.0"}
	zipH = fakeHash("zip")
	modH = fakeHash("mod")
	good = "corp.example/x v1.0.0 " + zipH + "\ncorp.example/x v1.0.0/go.mod " + modH + "\n"
)

func TestAppendRefusesHostileRecords(t *testing.T) {
	short := "h1:" + strings.Repeat("A", 42) + "=" // 31 bytes
	tests := []struct {
		name string
		m    module.Version
		text string
	}{
		{"empty", xv1, ""},
		{"wrong path", xv1, strings.ReplaceAll(good, "corp.example/x ", "corp.example/y ")},
		{"wrong path on go.mod line", xv1, strings.Replace(good, "x v1.0.0/go.mod", "y v1.0.0/go.mod", 1)},
		{"wrong version", xv1, strings.ReplaceAll(good, "v1.0.0", "v1.0.1")},
		{"extra line", xv1, good + "corp.example/x v1.0.0 " + zipH + "\n"},
		{"extra other module", xv1, good + "corp.example/y v1.0.0 " + zipH + "\n"},
		{"blank line", xv1, good + "\n"},
		{"missing go.mod line", xv1, "corp.example/x v1.0.0 " + zipH + "\n"},
		{"only go.mod line", xv1, "corp.example/x v1.0.0/go.mod " + modH + "\n"},
		{"lines swapped", xv1, "corp.example/x v1.0.0/go.mod " + modH + "\ncorp.example/x v1.0.0 " + zipH + "\n"},
		{"go.mod twice", xv1, "corp.example/x v1.0.0/go.mod " + modH + "\ncorp.example/x v1.0.0/go.mod " + modH + "\n"},
		{"no final newline", xv1, strings.TrimSuffix(good, "\n")},
		{"CR", xv1, strings.ReplaceAll(good, "\n", "\r\n")},
		{"CR inside hash", xv1, strings.Replace(good, zipH, zipH[:10]+"\r"+zipH[10:], 1)},
		{"newline inside hash", xv1, strings.Replace(good, zipH, zipH[:10]+"\n"+zipH[10:], 1)},
		{"tab", xv1, strings.Replace(good, " ", "\t", 1)},
		{"two spaces", xv1, strings.Replace(good, " ", "  ", 1)},
		{"trailing space", xv1, strings.Replace(good, "\n", " \n", 1)},
		{"NUL", xv1, strings.Replace(good, "x v1", "x\x00v1", 1)},
		{"bad base64", xv1, strings.Replace(good, zipH, "h1:!!!!"+zipH[7:], 1)},
		{"base64 of 31 bytes", xv1, strings.Replace(good, zipH, short, 1)},
		{"base64 without padding", xv1, strings.Replace(good, zipH, strings.TrimSuffix(zipH, "="), 1)},
		{"base64 non-zero padding bits", xv1, strings.Replace(good, zipH, zipH[:len(zipH)-2]+"B=", 1)},
		{"h2 hash", xv1, strings.Replace(good, zipH, "h2:"+zipH[3:], 1)},
		{"no hash prefix", xv1, strings.Replace(good, zipH, zipH[3:], 1)},
		{"huge", xv1, good + strings.Repeat("corp.example/x v1.0.0 "+zipH+"\n", 1<<15)},
		{"huge path", module.Version{Path: "corp.example/" + strings.Repeat("a", maxRecord), Version: "v1.0.0"},
			strings.ReplaceAll(good, "corp.example/x", "corp.example/"+strings.Repeat("a", maxRecord))},
		{"non-canonical version", module.Version{Path: "corp.example/x", Version: "v1.0"}, strings.ReplaceAll(good, "v1.0.0", "v1.0")},
		{"build metadata", module.Version{Path: "corp.example/x", Version: "v1.0.0+meta"}, strings.ReplaceAll(good, "v1.0.0", "v1.0.0+meta")},
		{"invalid path", module.Version{Path: "Corp.example/x", Version: "v1.0.0"}, strings.ReplaceAll(good, "corp.example/x", "Corp.example/x")},
		{"major version mismatch", module.Version{Path: "corp.example/x", Version: "v2.0.0"}, strings.ReplaceAll(good, "v1.0.0", "v2.0.0")},
		{"version with /go.mod", module.Version{Path: "corp.example/x", Version: "v1.0.0/go.mod"}, strings.ReplaceAll(good, "v1.0.0", "v1.0.0/go.mod")},
		{"not UTF-8", xv1, strings.Replace(good, "x v1", "x\xff v1", 1)},
	}
	l := openTestLog(t, t.TempDir(), newTestKey(t, testName))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Append(context.Background(), tt.m, []byte(tt.text))
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Append = %v, want ErrInvalidRecord", err)
			}
			if !strings.Contains(err.Error(), tt.m.Path) || len(err.Error()) > 2*maxRecord+200 {
				t.Errorf("error does not name the module, or is huge: %.300s", err)
			}
		})
	}
	if l.Size() != 0 {
		t.Fatalf("log has %d records after refusing all", l.Size())
	}
	// Sanity: the record they were made from is fine, and so is +incompatible.
	mustAppend(t, l, xv1, []byte(good))
	inc := module.Version{Path: "corp.example/x", Version: "v2.0.0+incompatible"}
	mustAppend(t, l, inc, recordFor(inc, ""))
}

// FuzzParseRecord: whatever parseRecord accepts is a record the sumdb
// server can format, and exactly the two lines of the version it names.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(strings.ReplaceAll(good, "\n", "\r\n")))
	f.Add(recordFor(module.Version{Path: "corp.example/x/v2", Version: "v2.1.0-rc.1"}, ""))
	f.Add([]byte("corp.example/x v1.0.0 " + zipH + "\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		m, err := parseRecord(text)
		if err != nil {
			return
		}
		if _, err := tlog.FormatRecord(1, text); err != nil {
			t.Fatalf("accepted %q, which tlog cannot format: %v", text, err)
		}
		zip, mod := recordHashes(text)
		want := m.Path + " " + m.Version + " " + zip + "\n" + m.Path + " " + m.Version + "/go.mod " + mod + "\n"
		if string(text) != want {
			t.Fatalf("accepted %q, which is not the record %q", text, want)
		}
		if err := checkRecord(m, text); err != nil {
			t.Fatalf("parseRecord accepts %q but checkRecord(%v) refuses: %v", text, m, err)
		}
	})
}
