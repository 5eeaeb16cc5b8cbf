// Package depsum checks the dependencies of a module being admitted: it is
// `go mod verify` plus the go command's checksum-database checks, done from
// the module's go.mod and go.sum alone, without a module cache and without
// downloading any dependency.
//
// [Checker.Check] proves two things:
//
//   - go.sum is complete enough to build the module with -mod=readonly:
//     every requirement in go.mod has its go.sum lines (see [Checker.Check]
//     for exactly which), and no requirement is replaced by a local directory,
//     whose contents no checksum can pin;
//   - every go.sum line, including those of modules go.mod does not name (the
//     pruned module graph), matches the checksum database that is
//     authoritative for its module path: the public one (sum.golang.org,
//     reached through GOPROXY's /sumdb/ endpoint as the go command does) for
//     public paths, modgate's own for paths matching the private patterns.
//
// The public database is read with golang.org/x/mod/sumdb.Client ([SumDB]),
// which verifies every record with tlog inclusion proofs against a signed
// tree head and every new tree head against the last one it verified. That
// last head is persisted in [SumDBOptions.CacheDir], so a database that forks
// or rolls back its log is caught across restarts.
//
// Every failure is a [*Problem] that names the dependency, the check and the
// reason in one line and wraps one sentinel error. [IsTransient] tells a
// failure worth retrying (a database that could not be reached) from a
// rejection; [IsSecurity] tells the rejections that are security events (a
// go.sum hash that disagrees with the database, a misbehaving database).
package depsum
