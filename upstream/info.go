package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// Info is a .info document (or an @latest answer): the version and its
// time, as the proxy says. The checksum database does not cover it.
type Info struct {
	Version string
	Time    time.Time
	// Raw is the document as served.
	Raw []byte
}

// infoKeys are the keys parseInfo reads. The go command also reads Name,
// Short and Origin (cmd/go/internal/modfetch.RevInfo); they are allowed
// and left in Raw.
var infoKeys = []string{"Version", "Time", "Name", "Short", "Origin"}

// parseInfo parses a .info document strictly: one JSON object, no
// duplicate keys, no key that json.Unmarshal would match to a known field
// without being spelled exactly so (the go command reads .info with
// json.Unmarshal, which matches keys case-insensitively: {"version": …}
// must not mean one thing here and another there), a canonical Version and
// a Time.
func parseInfo(data []byte) (Info, error) {
	var info Info
	bad := func(format string, args ...any) (Info, error) {
		return Info{}, fmt.Errorf("%w: %s", ErrBadInfo, fmt.Sprintf(format, args...))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad("not a JSON object")
	}
	seen := make(map[string]bool)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad("%v", err)
		}
		key, _ := t.(string)
		if seen[key] {
			return bad("key %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("%v", err)
		}
		switch key {
		case "Version":
			if err := json.Unmarshal(raw, &info.Version); err != nil || raw[0] != '"' {
				return bad("Version is not a string")
			}
		case "Time":
			if err := json.Unmarshal(raw, &info.Time); err != nil || raw[0] != '"' {
				return bad("Time is not an RFC 3339 time")
			}
		default:
			for _, k := range infoKeys {
				if key != k && strings.EqualFold(key, k) {
					return bad("key %q is not %q, but json.Unmarshal would read it as that", key, k)
				}
			}
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return bad("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON object")
	}
	switch {
	case info.Version == "":
		return bad("no Version")
	case module.CanonicalVersion(info.Version) != info.Version:
		return bad("Version %q is not a canonical semantic version", info.Version)
	case info.Time.IsZero():
		return bad("no Time")
	}
	info.Raw = bytes.Clone(data)
	return info, nil
}

// List returns the versions the upstream proxies list for a module path
// (@v/list): as the go command reads the list, without pseudo-versions,
// sorted; and, more strictly, only canonical versions valid for the path.
// The list is the proxy's word: it can leave versions out.
func (f *Fetcher) List(ctx context.Context, path string) ([]string, error) {
	escPath, err := escapePath(path)
	if err != nil {
		return nil, &Error{Module: module.Version{Path: path}, Check: "list", Err: err}
	}
	var buf bufSink
	if _, err := f.download(ctx, escPath+"/@v/list", maxListSize, &buf, nil); err != nil {
		return nil, &Error{Module: module.Version{Path: path}, Check: "list", Err: err}
	}
	return parseList(path, buf.Bytes()), nil
}

// parseList reads an @v/list response: one version per line, the first
// field of each (a proxy may add a time after it).
func parseList(path string, data []byte) []string {
	list := []string{}
	seen := make(map[string]bool)
	for line := range strings.SplitSeq(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		v := fields[0]
		if seen[v] || module.CanonicalVersion(v) != v || module.IsPseudoVersion(v) || checkPathVersion(path, v) != nil {
			continue
		}
		seen[v] = true
		list = append(list, v)
	}
	semver.Sort(list)
	return list
}

// Latest returns what the upstream proxies answer for a module path's
// @latest: a version valid for the path and its time, unproven (Fetch
// proves the version itself). Not every proxy answers @latest: that is
// not-found ([IsNotFound]). The go command asks for @latest only when
// @v/list has no versions, and otherwise picks from the list itself.
func (f *Fetcher) Latest(ctx context.Context, path string) (Info, error) {
	fail := func(err error) (Info, error) {
		return Info{}, &Error{Module: module.Version{Path: path}, Check: "latest", Err: err}
	}
	escPath, err := escapePath(path)
	if err != nil {
		return fail(err)
	}
	var info Info
	var buf bufSink
	_, err = f.download(ctx, escPath+"/@latest", f.opts.MaxInfoSize, &buf, func() error {
		i, err := parseInfo(buf.Bytes())
		if err != nil {
			return err
		}
		if err := checkPathVersion(path, i.Version); err != nil {
			return fmt.Errorf("%w: version %s: %v", ErrBadInfo, i.Version, err)
		}
		info = i
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return info, nil
}

func escapePath(path string) (string, error) {
	if err := module.CheckPath(path); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	esc, err := module.EscapePath(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return esc, nil
}
