package sumlog

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// recordsHeader starts the records file, so that Open never mistakes
// another file for a log (or a log of a later format for this one).
const recordsHeader = "modgate sumlog records v1\n"

// entryHeader is the size of an entry's length, id and checksum.
const entryHeader = 16

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeEntry returns the records-file entry of record id. The id is in the
// entry so that a misplaced entry (a copy, a reordering) fails its check
// even though its own bytes are intact.
func encodeEntry(id int64, text []byte) []byte {
	b := make([]byte, entryHeader+len(text))
	binary.BigEndian.PutUint32(b[0:], uint32(len(text)))
	binary.BigEndian.PutUint64(b[4:], uint64(id))
	copy(b[entryHeader:], text)
	binary.BigEndian.PutUint32(b[12:], entryCRC(b))
	return b
}

func entryCRC(entry []byte) uint32 {
	c := crc32.Update(0, castagnoli, entry[:12])
	return crc32.Update(c, castagnoli, entry[entryHeader:])
}

// entryLen returns the text length that an entry header declares.
func entryLen(hdr []byte) int {
	return int(binary.BigEndian.Uint32(hdr))
}

// checkEntry verifies a whole entry read back as record id and returns its
// text.
func checkEntry(id int64, entry []byte) ([]byte, error) {
	if len(entry) < entryHeader || entryLen(entry) != len(entry)-entryHeader {
		return nil, fmt.Errorf("entry length does not match")
	}
	if got := int64(binary.BigEndian.Uint64(entry[4:])); got != id {
		return nil, fmt.Errorf("entry says id %d", got)
	}
	if binary.BigEndian.Uint32(entry[12:]) != entryCRC(entry) {
		return nil, fmt.Errorf("checksum mismatch")
	}
	return entry[entryHeader:], nil
}
