// Package store keeps admitted module versions on disk in exactly the layout
// that the go command reads from GOPROXY=file:///<root>, so the directory is a
// module proxy as it stands: any static web server, the go command itself and
// modgate's own server can all serve it.
//
// For a module path P and version V (both case-escaped as the go command
// escapes them) a published version is the set of files
//
//	<root>/P/@v/V.zip      the module zip, exactly the bytes that were verified
//	<root>/P/@v/V.ziphash  the zip's "h1:" hash, as the go module cache keeps it
//	<root>/P/@v/V.mod      the go.mod
//	<root>/P/@v/V.<doc>    signed documents: SBOM, signature, attestation, verdict
//	<root>/P/@v/V.info     the version's JSON info; written last
//	<root>/P/@v/list       the published versions, one per line, semver order
//
// A version is published if and only if its .info exists. Every file is
// written under a temporary name, synced, and only then given its final name
// with a hard link, so a final name never refers to a partial file and no
// published file is ever overwritten. A crash leaves either nothing visible
// or a complete version, and publishing the same version again finishes the
// job.
//
// A Dir is safe for concurrent use, and several processes may publish into
// the same root: publishers take an flock on <root>/.modgate.lock. Readers
// take no lock; the order of writes above is what makes them safe.
package store
