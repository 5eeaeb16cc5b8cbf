package integrity

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"golang.org/x/mod/module"
)

// goSumInZip returns the go.sum at the root of m's module zip data, as
// GoSumFromZip does, without building archive/zip's list of every file:
// it walks the central directory comparing names in place, and reads the
// one entry. For a module of a few hundred files that list costs half as
// much as hashing the zip (zip.NewReader on golang.org/x/mod v0.14.0, 125
// files: 138 µs, 50 KB; SHA-256 of its 165 KB: 258 µs).
//
// The short way of a re-verification calls it on bytes whose SHA-256 the
// signed verification summary names, a zip that passed zip.CheckZip when
// it was admitted. It still trusts nothing it reads: any structure it does
// not expect (zip64, a name or size out of bounds, an entry twice, a
// checksum that does not match) is handed to GoSumFromZip, whose answer
// FuzzGoSumInZip holds it to.
func goSumInZip(data []byte, m module.Version) ([]byte, error) {
	if sum, ok := scanGoSum(data, m.Path+"@"+m.Version+"/go.sum"); ok {
		return sum, nil
	}
	return GoSumFromZip(bytes.NewReader(data), int64(len(data)), m)
}

const (
	sigEnd        = 0x06054b50 // end of central directory
	sigCentral    = 0x02014b50 // central directory header
	sigLocal      = 0x04034b50 // local file header
	sigDescriptor = 0x08074b50 // data descriptor
	endLen        = 22
	centralLen    = 46
	localLen      = 30
	maxComment    = 1<<16 - 1
	methodStore   = 0
	methodFlate   = 8
)

// scanGoSum finds the entry called name in zip data and returns its
// content (nil when there is none). ok is false when the answer is not
// certain: the caller then asks archive/zip.
func scanGoSum(data []byte, name string) (sum []byte, ok bool) {
	end := findEnd(data)
	if end < 0 {
		return nil, false
	}
	le := binary.LittleEndian
	count := int(le.Uint16(data[end+10:]))
	dirSize := int64(le.Uint32(data[end+12:]))
	dirOff := int64(le.Uint32(data[end+16:]))
	if count == 0xffff || dirSize == 0xffffffff || dirOff == 0xffffffff || // zip64
		dirOff+dirSize != int64(end) || le.Uint16(data[end+4:]) != 0 || le.Uint16(data[end+8:]) != uint16(count) {
		return nil, false
	}
	dir := data[dirOff:end]
	var found []byte // the central directory header of name
	for i := 0; i < count; i++ {
		if len(dir) < centralLen || le.Uint32(dir) != sigCentral {
			return nil, false
		}
		n, extra, comment := int(le.Uint16(dir[28:])), int(le.Uint16(dir[30:])), int(le.Uint16(dir[32:]))
		size := centralLen + n + extra + comment
		if len(dir) < size {
			return nil, false
		}
		if string(dir[centralLen:centralLen+n]) == name {
			if found != nil {
				return nil, false // twice: let archive/zip decide
			}
			found = dir[:size]
		}
		dir = dir[size:]
	}
	if len(dir) != 0 {
		return nil, false
	}
	if found == nil {
		return nil, true
	}
	flags, method := le.Uint16(found[8:]), le.Uint16(found[10:])
	crc := le.Uint32(found[16:])
	csize, usize := int64(le.Uint32(found[20:])), int64(le.Uint32(found[24:]))
	off := int64(le.Uint32(found[42:]))
	if flags&0x1 != 0 || csize == 0xffffffff || usize == 0xffffffff || usize > MaxGoSum ||
		(method != methodStore && method != methodFlate) || off+localLen > dirOff {
		return nil, false
	}
	local := data[off:]
	if le.Uint32(local) != sigLocal || int(le.Uint16(local[26:])) != len(name) ||
		off+localLen+int64(len(name)) > dirOff || string(local[localLen:localLen+len(name)]) != name {
		return nil, false
	}
	start := off + localLen + int64(len(name)) + int64(le.Uint16(local[28:]))
	if start+csize > dirOff {
		return nil, false
	}
	if flags&0x8 != 0 {
		// A data descriptor follows, whose checksum archive/zip compares
		// too: with or without its signature.
		dd := start + csize
		if dd+4 <= dirOff && le.Uint32(data[dd:]) == sigDescriptor {
			dd += 4
		}
		if dd+4 > dirOff || le.Uint32(data[dd:]) != crc {
			return nil, false
		}
	}
	raw := data[start : start+csize]
	var content []byte
	switch method {
	case methodStore:
		if csize != usize {
			return nil, false
		}
		content = bytes.Clone(raw)
	case methodFlate:
		r := inflaters.Get().(io.ReadCloser)
		r.(flate.Resetter).Reset(bytes.NewReader(raw), nil)
		b := bytes.NewBuffer(make([]byte, 0, usize+1))
		_, err := b.ReadFrom(io.LimitReader(r, usize+1))
		inflaters.Put(r)
		if err != nil || int64(b.Len()) != usize {
			return nil, false
		}
		content = b.Bytes()
	}
	if crc32.ChecksumIEEE(content) != crc {
		return nil, false
	}
	return content, true
}

// inflaters are flate readers for reuse: each holds a 32 KB window.
var inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// findEnd returns the offset of the end of central directory record in
// data, or -1. It is the last signature, as archive/zip takes it, and its
// comment must reach exactly the end (archive/zip also takes one followed
// by other bytes; no module zip is).
func findEnd(data []byte) int {
	lo := max(0, len(data)-endLen-maxComment)
	for i := len(data) - endLen; i >= lo; i-- {
		if binary.LittleEndian.Uint32(data[i:]) == sigEnd {
			if i+endLen+int(binary.LittleEndian.Uint16(data[i+20:])) == len(data) {
				return i
			}
			return -1
		}
	}
	return -1
}
