// Package pipeline admits module versions: it runs a job through an ordered
// list of stages (fetch, identify, tag signature, module zip, immutability,
// publish, …) and returns a Verdict that says what was proven and, for a
// rejection, which check failed and why.
//
// The package owns the interfaces it consumes (Store); the file-system store
// and, later, NATS-backed implementations satisfy them. Each stage either
// succeeds, rejects (a permanent failure, recorded in the verdict as a
// Problem naming the check and the reason) or fails transiently (anything else: the job may be retried). Security
// failures are always rejections, never retried; nothing is published unless
// every stage passed.
package pipeline
