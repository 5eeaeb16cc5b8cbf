// Package upstream fetches a public module version from an upstream module
// proxy (GOPROXY) and proves it against the public checksum database, so
// that modgate can admit public modules through the same gate as private
// ones.
//
// # Trust model
//
// The upstream proxy is untrusted transport. [Fetcher.Fetch] downloads a
// version's .info, .mod and .zip, and believes the .mod and the .zip only
// once their h1: hashes (computed as the go command computes them) equal the
// go.sum lines the checksum database holds for that version. The database is
// a [depsum.DB], normally a [depsum.SumDB] for sum.golang.org: it proves each
// record with tlog inclusion proofs against a signed tree head, and each new
// tree head consistent with the last one verified, which it persists. A hash
// that disagrees with the database is a security event ([ErrMismatch]):
// someone is being served bytes that everyone else is not. A version the
// database does not hold is refused ([ErrNotInDB]); there is no GONOSUMDB
// here.
//
// What the database proves is that these are the bytes everyone gets for
// that module version, not that they are benign: judging them is the work
// of the stages that follow (dependencies, SBOM, policy).
//
// Not covered by the database, and so only as good as the proxy's word:
//   - the .info document: its Version must equal the version asked for (as
//     the go command requires), but its Time and Origin are the proxy's
//     claims; do not base security decisions on them;
//   - [Fetcher.List] and [Fetcher.Latest]: a proxy can hide versions or name
//     an older one as latest, but it cannot make Fetch accept bytes the
//     database does not vouch for.
//
// Beyond the go command, Fetch also requires the module zip to pass
// golang.org/x/mod/zip.CheckZip, the .mod file to be the go.mod inside the
// zip (or, for a module whose zip has no go.mod, the file the go command
// synthesizes for it: "module PATH\n"), and that go.mod to declare the
// module's own path.
//
// # GOPROXY
//
// The proxy list is read as the go command reads it (go help goproxy):
// entries separated by ',' fall through to the next entry only when a proxy
// answers 404 or 410; entries followed by '|' fall through on any error.
// Each file (.info, .mod, .zip) walks the list on its own. "direct" (fetching
// from version control) is not supported: modgate admits public modules
// only from a module proxy, so reaching "direct" in the list means "not
// found". "off" ends the list the same way. Only http and https proxies are
// used. A pass over the list that ends in a transient failure (5xx, 429,
// timeouts, connection errors) is retried with exponential backoff and
// jitter.
//
// # Errors
//
// Every error is an [*Error] naming the module, the version and the check.
// [IsSecurity], [IsTransient] and [IsNotFound] classify it; anything else
// is a rejection: permanent, with its reason.
package upstream
