// Package sbomtest makes cosign signing keys for tests.
package sbomtest

import (
	"testing"

	"github.com/modgate/modgate/sbom"
)

// NewSigner makes a new cosign key pair and returns its signer.
func NewSigner(tb testing.TB) *sbom.Signer {
	tb.Helper()
	priv, _, err := sbom.GenerateKeys([]byte("pw"))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := sbom.LoadSigner(priv, []byte("pw"))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
