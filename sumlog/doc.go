// Package sumlog is modgate's checksum database: an append-only, crash-safe
// transparency log of go.sum records, served with the sumdb protocol so that
// developers' go commands verify private modules against modgate's key
// exactly as they verify public modules against sum.golang.org.
//
// The tree, proofs, tiles and signed notes are golang.org/x/mod's sumdb/tlog,
// sumdb/note and sumdb; this package adds only what those leave to their
// caller: durable storage, recovery after a crash, and refusing to fork.
//
// # Files
//
// A log directory holds four files; one process owns it at a time.
//
//	lock     flock'ed by the Log that has the directory open; empty.
//	records  the header line "modgate sumlog records v1\n", then one entry per
//	         record, in id order:
//	             uint32 big-endian  length of text
//	             uint64 big-endian  record id
//	             uint32 big-endian  CRC-32C of the 12 bytes above and text
//	             text               the record: "M V h1:…\nM V/go.mod h1:…\n"
//	hashes   the tlog stored hashes, 32 bytes each, stored hash index i at
//	         offset 32*i (tlog.StoredHashes of each record, in order).
//	latest   the signed tree head (a note over tlog.FormatTree) that the log
//	         serves; replaced atomically by rename.
//
// records and hashes only ever grow; Open truncates a torn tail and nothing
// else.
//
// # Durability
//
// Append writes the record and its hashes and fsyncs both before it signs
// the tree that includes the record; it then persists that head in latest
// and only then makes the record and the head visible. So every head the log
// has ever served covers records that are on disk, and latest is never behind
// what was served.
//
// Open repairs what a crash can leave: an incomplete last entry in records
// (dropped), hashes behind or ahead of records (recomputed from the records,
// which are the truth), records newer than latest (kept, and a new head is
// signed: they are durable and the tree still extends the old head). It
// refuses to open, with ErrCorrupt, when the records no longer hash to the
// persisted head: serving a different tree at a size a client may have seen
// would be a fork, and every client would raise a SECURITY ERROR anyway.
package sumlog
