package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
)

// Verify authenticates a delivery: body is the raw request body, exactly as
// received, and secrets are the provider's configured webhook secrets: the
// delivery is authentic when any of them verifies it (during a rotation,
// the new one and the old).
//
// GitHub must send X-Hub-Signature-256 "sha256=<hex HMAC-SHA256>"; Gitea
// X-Gitea-Signature "<hex HMAC-SHA256>" and/or X-Hub-Signature-256 (every one
// present must match); GitLab X-Gitlab-Token equal to the secret. An empty
// secret refuses every delivery. Errors wrap ErrUnauthenticated and never
// contain the secret, the received signature or the expected one.
func Verify(p Provider, h http.Header, body []byte, secrets ...[]byte) error {
	if !p.valid() {
		return fmt.Errorf("%w: unknown provider %s", ErrUnauthenticated, quote(string(p)))
	}
	err := unauthf(p, "no secret is configured for this provider")
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		if err = verify(p, h, body, secret); err == nil {
			return nil
		}
	}
	return err
}

// verify is Verify with one secret.
func verify(p Provider, h http.Header, body []byte, secret []byte) error {
	switch p {
	case GitHub:
		vals := h.Values("X-Hub-Signature-256")
		if len(vals) == 0 {
			return unauthf(p, "missing X-Hub-Signature-256 header")
		}
		return checkMAC(p, "X-Hub-Signature-256", vals, "sha256=", body, secret)
	case Gitea:
		found := false
		for _, s := range []struct{ header, prefix string }{
			{"X-Gitea-Signature", ""},
			{"X-Hub-Signature-256", "sha256="},
		} {
			vals := h.Values(s.header)
			if len(vals) == 0 {
				continue
			}
			found = true
			if err := checkMAC(p, s.header, vals, s.prefix, body, secret); err != nil {
				return err
			}
		}
		if !found {
			return unauthf(p, "missing X-Gitea-Signature (or X-Hub-Signature-256) header")
		}
		return nil
	default: // GitLab
		vals := h.Values("X-Gitlab-Token")
		if len(vals) == 0 {
			return unauthf(p, "missing X-Gitlab-Token header")
		}
		if len(vals) > 1 {
			return unauthf(p, "%d X-Gitlab-Token headers", len(vals))
		}
		// Comparing digests keeps the comparison constant-time whatever the
		// lengths: subtle.ConstantTimeCompare returns early on a length
		// mismatch and would leak the secret's length.
		got := sha256.Sum256([]byte(vals[0]))
		want := sha256.Sum256(secret)
		if !hmac.Equal(got[:], want[:]) {
			return unauthf(p, "X-Gitlab-Token does not match the configured secret")
		}
		return nil
	}
}

func unauthf(p Provider, format string, args ...any) error {
	return fmt.Errorf("%s webhook: %w: %s", p, ErrUnauthenticated, fmt.Sprintf(format, args...))
}

// checkMAC checks one signature header: exactly one value, prefix followed by
// 64 hex digits, equal to HMAC-SHA256(secret, body).
func checkMAC(p Provider, header string, vals []string, prefix string, body, secret []byte) error {
	if len(vals) > 1 {
		return unauthf(p, "%d %s headers", len(vals), header)
	}
	hexSig, ok := strings.CutPrefix(vals[0], prefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return unauthf(p, "%s is not %s<%d hex digits>", header, prefix, 2*sha256.Size)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return unauthf(p, "%s is not %s<%d hex digits>", header, prefix, 2*sha256.Size)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return unauthf(p, "%s does not match the body: wrong secret or altered body", header)
	}
	return nil
}

// Sign returns the hex HMAC-SHA256 of body under secret, as GitHub and Gitea
// compute it. It is for tests and for tools that replay deliveries.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
