package server

import (
	"net/http"
	"path"
	"strings"

	"github.com/modgate/modgate/store"
	"golang.org/x/mod/module"
)

// What a request asks for.
type kind int

const (
	kindList   kind = iota // <module>/@v/list
	kindLatest             // <module>/@latest
	kindFile               // <module>/@v/<version><suffix>
)

// A request is a parsed proxy URL path.
type request struct {
	kind   kind
	mod    module.Version // Version is empty for kindList and kindLatest
	suffix string         // for kindFile
}

// servedSuffixes are the files of a version that the proxy serves. The
// .ziphash is the store's own record and the verdict is not for the go
// command, so both are left out.
var servedSuffixes = []string{
	".info", ".mod", ".zip",
	store.DocSPDX, store.DocSPDXSig, store.DocSPDXBundle, store.DocInToto,
	store.StateReverified,
}

// A reqError is a request refused before the store is asked.
type reqError struct {
	status int
	msg    string
}

// maxPath bounds the URL path: far beyond any real module path and version,
// and short enough to keep error handling cheap.
const maxPath = 4096

// parsePath parses a GOPROXY URL path (already percent-decoded).
//
// Status codes, and why:
//   - 400 for a path that no go command sends: not clean ("..", ".", "//",
//     a trailing slash), control characters or backslashes, or case escapes
//     that module.UnescapePath/UnescapeVersion reject (upper case letters,
//     "!" not before a lower case letter) or that unescape to an invalid
//     module path. Whatever the go command sends, it built with
//     module.EscapePath/EscapeVersion, and those round-trip.
//   - 404 for a well-formed request for something this proxy does not have:
//     any path that is not a proxy endpoint, an unknown file suffix, the
//     internal .ziphash and .verdict.json, and versions that are not
//     canonical or do not fit the module path's major version. The go
//     command asks <version>.info for queries such as "v1.2" or a branch
//     name; a proxy that cannot resolve them must say 404 so the go command
//     moves on rather than fail.
func parsePath(p string) (request, *reqError) {
	if len(p) > maxPath || p == "" || p[0] != '/' || path.Clean(p) != p {
		return request{}, &reqError{http.StatusBadRequest, "bad request: malformed path"}
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return request{}, &reqError{http.StatusBadRequest, "bad request: malformed path"}
		}
	}
	var req request
	var escPath, file string
	if m, ok := strings.CutSuffix(p[1:], "/@latest"); ok {
		req.kind, escPath = kindLatest, m
	} else if m, f, ok := strings.Cut(p[1:], "/@v/"); ok {
		escPath, file = m, f
		req.kind = kindFile
		if f == "list" {
			req.kind = kindList
		}
	} else {
		return request{}, &reqError{http.StatusNotFound, "not found"}
	}
	modPath, err := module.UnescapePath(escPath)
	if err != nil {
		return request{}, &reqError{http.StatusBadRequest, "bad request: invalid module path"}
	}
	req.mod.Path = modPath
	if req.kind != kindFile {
		return req, nil
	}
	for _, s := range servedSuffixes {
		if strings.HasSuffix(file, s) {
			req.suffix = s
			break
		}
	}
	if req.suffix == "" {
		return request{}, &reqError{http.StatusNotFound, "not found: " + modPath + ": no such file"}
	}
	v, err := module.UnescapeVersion(strings.TrimSuffix(file, req.suffix))
	if err != nil {
		return request{}, &reqError{http.StatusBadRequest, "bad request: invalid version"}
	}
	if module.CanonicalVersion(v) != v {
		return request{}, &reqError{http.StatusNotFound,
			"not found: " + modPath + "@" + v + ": this proxy serves canonical versions only"}
	}
	if err := module.Check(modPath, v); err != nil {
		return request{}, &reqError{http.StatusNotFound, "not found: " + err.Error()}
	}
	req.mod.Version = v
	return req, nil
}
