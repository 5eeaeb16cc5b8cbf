//go:build !unix

package rawhash

import (
	"bytes"
	"os"
)

// readFile reads the file at path whole into *buf, growing it as needed.
func readFile(path string, buf *[]byte) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	b := bytes.NewBuffer((*buf)[:0])
	if _, err := b.ReadFrom(f); err != nil {
		return 0, err
	}
	*buf = b.Bytes()[:cap(b.Bytes())]
	return b.Len(), nil
}
