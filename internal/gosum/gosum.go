// Package gosum holds what every part of modgate computes the same way as
// the go command: the go.sum hash of a go.mod file.
package gosum

import (
	"bytes"
	"io"

	"golang.org/x/mod/sumdb/dirhash"
)

// ModHash is the go.sum "/go.mod" hash of a go.mod file ("h1:…"): dirhash's
// Hash1 over the single file "go.mod", as the go command computes it.
func ModHash(gomod []byte) string {
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gomod)), nil
	})
	if err != nil {
		// Hash1 fails only when opening a file fails or a name has a
		// newline; neither can happen here.
		panic("gosum: " + err.Error())
	}
	return h
}
