// Package pgptest writes OpenPGP test material as gpg --armor does.
package pgptest

import (
	"bytes"
	"io"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// Armor returns what write writes as one armored block of blockType ("PGP
// PUBLIC KEY BLOCK", "PGP SIGNATURE", …), ending in a newline.
func Armor(tb testing.TB, blockType string, write func(io.Writer) error) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := write(w); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// Public is e's public key, as `gpg --export --armor` writes it.
func Public(tb testing.TB, e *openpgp.Entity) []byte {
	tb.Helper()
	return Armor(tb, "PGP PUBLIC KEY BLOCK", e.Serialize)
}

// Bytes is a writer function for Armor that writes data as it is.
func Bytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}
