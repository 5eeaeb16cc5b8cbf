package upstream

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseInfo(t *testing.T) {
	for _, tc := range []struct {
		data    string
		wantErr string // "" for success
	}{
		{`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z"}`, ""},
		{` {"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z","Origin":{"VCS":"git","URL":"https://x","Hash":"abc"}} ` + "\n", ""},
		{`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00.123+02:00","Extra":[1,2,{}]}`, ""},
		{`{"Version":"v2.0.0+incompatible","Time":"2026-03-01T12:00:00Z"}`, ""},
		{`{"Version":"v0.0.0-20260301120000-abcdefabcdef","Time":"2026-03-01T12:00:00Z"}`, ""},
		{`{"version":"v1.0.0","Time":"2026-03-01T12:00:00Z"}`, "json.Unmarshal would read it"},
		{`{"Version":"v1.0.0","VERSION":"v9.0.0","Time":"2026-03-01T12:00:00Z"}`, "json.Unmarshal would read it"},
		{`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z","origin":{}}`, "json.Unmarshal would read it"},
		{`{"Version":"v1.0.0","Version":"v9.0.0","Time":"2026-03-01T12:00:00Z"}`, "appears twice"},
		{`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z"} {}`, "data after"},
		{`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z"}x`, "data after"},
		{`{"Version":"v1.0.0"}`, "no Time"},
		{`{"Time":"2026-03-01T12:00:00Z"}`, "no Version"},
		{`{"Version":null,"Time":"2026-03-01T12:00:00Z"}`, "not a string"},
		{`{"Version":1,"Time":"2026-03-01T12:00:00Z"}`, "not a string"},
		{`{"Version":"v1.0.0","Time":null}`, "not an RFC 3339 time"},
		{`{"Version":"v1.0.0","Time":"yesterday"}`, "not an RFC 3339 time"},
		{`{"Version":"v1.0","Time":"2026-03-01T12:00:00Z"}`, "not a canonical"},
		{`{"Version":"master","Time":"2026-03-01T12:00:00Z"}`, "not a canonical"},
		{`{"Version":"v1.0.0+meta","Time":"2026-03-01T12:00:00Z"}`, "not a canonical"},
		{`["v1.0.0"]`, "not a JSON object"},
		{``, "not a JSON object"},
		{`{"Version":"v1.0.0","Time":"2026-03-01T12:00:00Z"`, "not a JSON object"},
		{`<html>`, "not a JSON object"},
	} {
		info, err := parseInfo([]byte(tc.data))
		if tc.wantErr == "" {
			if err != nil || info.Time.IsZero() || info.Version == "" || string(info.Raw) != tc.data {
				t.Errorf("%s: %+v, %v", tc.data, info, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrBadInfo) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: want error %q, got %v", tc.data, tc.wantErr, err)
		}
	}
}

func TestParseList(t *testing.T) {
	data := "v1.1.0\nv1.0.0 2026-03-01T12:00:00Z\n\n  v1.10.0  \nv1.2\nv1.0.0\nmaster\nv2.0.0\n" +
		"v0.0.0-20260301120000-abcdefabcdef\nv1.3.0-rc.1\nv1.0.0+meta\r\nv1.4.0\r\n"
	got := parseList("example.com/m", []byte(data))
	want := []string{"v1.0.0", "v1.1.0", "v1.3.0-rc.1", "v1.4.0", "v1.10.0"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := parseList("example.com/m", nil); got == nil || len(got) != 0 {
		t.Errorf("empty list: %#v", got)
	}
	// +incompatible versions belong to paths without a major suffix.
	if got := parseList("example.com/m", []byte("v2.0.0+incompatible\nv1.0.0\n")); !slices.Equal(got, []string{"v1.0.0", "v2.0.0+incompatible"}) {
		t.Errorf("got %q", got)
	}
	if got := parseList("example.com/m/v2", []byte("v2.0.0+incompatible\nv2.0.0\nv1.0.0\n")); !slices.Equal(got, []string{"v2.0.0"}) {
		t.Errorf("got %q", got)
	}
}

func TestList(t *testing.T) {
	e := newEnv(t)
	e.proxy.write(t, "example.com/Upper", "list", []byte("v1.0.0\nv0.9.0\nbogus\n"))
	f := e.fetcher(Options{})
	list, err := f.List(context.Background(), "example.com/Upper")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(list, []string{"v0.9.0", "v1.0.0"}) {
		t.Errorf("list = %q", list)
	}
	if n := e.proxy.count("/example.com/!upper/@v/list"); n != 1 {
		t.Errorf("escaped path not asked for (%d)", n)
	}
	_, err = f.List(context.Background(), "example.com/absent")
	if !IsNotFound(err) {
		t.Errorf("absent: %v", err)
	}
	_, err = f.List(context.Background(), "example.com/../x")
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid path: %v", err)
	}
}

func TestLatest(t *testing.T) {
	e := newEnv(t)
	e.proxy.write(t, "example.com/m", "@latest", infoJSON("v1.2.3"))
	e.proxy.write(t, "example.com/bad", "@latest", infoJSON("v2.0.0"))
	f := e.fetcher(Options{})
	info, err := f.Latest(context.Background(), "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != "v1.2.3" || !info.Time.Equal(testTime) {
		t.Errorf("info = %+v", info)
	}
	// v2.0.0 is not a version of a path without /v2.
	_, err = f.Latest(context.Background(), "example.com/bad")
	wantRejection(t, err, ErrBadInfo, "latest")
	_, err = f.Latest(context.Background(), "example.com/absent")
	if !IsNotFound(err) {
		t.Errorf("absent: %v", err)
	}
}
