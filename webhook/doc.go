// Package webhook turns tag webhooks from GitHub, GitLab and Gitea into
// admission events, and refuses everything else.
//
// A delivery is acted on only after it is authenticated with the provider's
// own scheme, over the exact bytes received and before any of them is parsed:
//
//   - GitHub: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(secret, body).
//     The legacy SHA-1 X-Hub-Signature is never consulted.
//   - Gitea: X-Gitea-Signature = hex HMAC-SHA256(secret, body), no prefix.
//     Gitea also sends the same MAC as X-Hub-Signature-256 ("sha256=…");
//     Verify checks every one of the two that is present, requires at least
//     one, and refuses if any does not match. (Forgejo sends the same headers.)
//   - GitLab: X-Gitlab-Token equals the secret. GitLab does not sign the body:
//     anyone who holds the token can forge any delivery, so for GitLab
//     authentication is only as good as the secrecy of that token.
//
// All comparisons are constant-time. A provider with no secret configured is
// disabled; there is no unauthenticated mode.
//
// # What each provider sends for a tag
//
// Event.Object is the new value of refs/tags/<tag> as the payload states it
// ("after", or Gitea's create "sha"): for an annotated tag that is the tag
// object, for a lightweight tag the commit. Event.Commit is the commit the tag
// points to, where the payload names it: GitHub and Gitea head_commit.id on
// push, GitLab checkout_sha. GitHub create/delete events name no object at
// all. Neither field is trusted downstream: the pipeline resolves the tag in
// its own mirror of the configured repository; they are for logs and audit.
//
//   - GitHub: "push" with ref refs/tags/<tag> (deleted=true for a deletion),
//     "create" and "delete" with ref_type "tag" and the short ref name. GitHub
//     sends no create event when more than three tags are pushed at once, so
//     subscribe to push. With both subscribed, one tag arrives twice, as two
//     deliveries with different bodies; both are enqueued and the second
//     admission is a no-op. "ping" is ignored (answered 200).
//   - GitLab: X-Gitlab-Event "Tag Push Hook" (object_kind "tag_push"); a
//     deletion has after = 0000…; "System Hook" deliveries of object_kind
//     tag_push are read the same way.
//   - Gitea: "push" with ref refs/tags/<tag> (a deletion has after = 0000… and
//     is followed by a "delete" event), "create"/"delete" with ref_type "tag".
//
// Anything else (branch pushes, other event types) is ErrIgnored.
//
// # Replays
//
// The delivery id (X-GitHub-Delivery, X-Gitea-Delivery, GitLab's
// Idempotency-Key or else X-Gitlab-Event-UUID) is recorded, atomically,
// before the payload is parsed; a second delivery with the same id is not
// acted on. The id travels in a header that no provider signs, so for the
// HMAC providers the digest of the signed body is recorded too: a captured
// delivery replayed under a fresh id is still recognised. (Gitea's
// "Redeliver" button does exactly that, legitimately: same body, new id.)
// Duplicates are answered 200 {"result":"duplicate"}, not an error: the first
// copy was handled, and a provider that retries or an operator who presses
// "Redeliver" after a timeout must not be shown a failure, nor a GitLab hook
// be disabled for failing. An attacker learns nothing from the status.
//
// Handing an event to the Sink is at-least-once: if the Sink fails, the
// delivery's replay records are forgotten so that a redelivery is accepted.
// The pipeline is idempotent (a second admission of the same tag is a no-op).
//
// Tag deletions are recorded in the audit trail and never enqueued: a
// published version never changes, whatever happens to its tag.
package webhook
