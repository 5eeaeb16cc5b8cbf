package tagsig

import (
	"bytes"
	"testing"
	"time"
)

// fuzzSeeds are real tag objects made by git (testdata/tags) plus the
// hand-made shapes from the table tests.
func fuzzSeeds(f *testing.F) {
	for _, name := range []string{"openpgp.tag", "ssh.tag", "unsigned.tag"} {
		f.Add(readTag(f, name))
	}
	for _, s := range []string{
		hdr,
		hdr + "\nmsg\n" + pgpBlock + "tail\n",
		hdr + "\nmsg\n" + sshBlock + pgpBlock,
		hdr + "\nm\n" + x509Blk,
		"object " + hexID + "\ntype commit\ntag v1\n\nmsg\n",
		"-----BEGIN SSH SIGNATURE-----",
	} {
		f.Add([]byte(s))
	}
}

func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		tag, err := Parse(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(append(append([]byte(nil), tag.Payload...), tag.Signature...), raw) {
			t.Fatal("Payload+Signature != raw")
		}
		if !bytes.HasSuffix(tag.Payload, tag.Message) {
			t.Fatal("Message is not the end of Payload")
		}
		if (tag.Signature == nil) != (tag.Format == "") {
			t.Fatalf("Signature %q with Format %q", tag.Signature, tag.Format)
		}
		if !isHexID(tag.Object) || tag.Name == "" || tag.TaggerTime.IsZero() {
			t.Fatalf("accepted bad headers: %+v", tag)
		}
		// Re-parsing is stable.
		again, err := Parse(raw)
		if err != nil || again.Name != tag.Name || !again.TaggerTime.Equal(tag.TaggerTime) {
			t.Fatalf("re-parse: %v", err)
		}
		// Verify must not panic on anything Parse accepts.
		_, _ = fuzzRing.Verify(tag, time.Unix(1750000000, 0))
	})
}

func FuzzSplit(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		payload, sig := Split(raw)
		if len(payload)+len(sig) != len(raw) || !bytes.Equal(payload, raw[:len(payload)]) {
			t.Fatal("payload+sig != raw")
		}
		if sig == nil {
			if len(payload) != len(raw) {
				t.Fatal("no signature but payload is short")
			}
			return
		}
		if markerAt(sig) == nil {
			t.Fatalf("signature %q does not start with a marker", sig)
		}
		if len(payload) > 0 && payload[len(payload)-1] != '\n' {
			t.Fatal("signature does not start a line")
		}
		// It is the last marker line.
		for off := bytes.IndexByte(sig, '\n'); off >= 0 && off+1 < len(sig); {
			if markerAt(sig[off+1:]) != nil {
				t.Fatalf("a later marker line at %d was not chosen", off+1)
			}
			next := bytes.IndexByte(sig[off+1:], '\n')
			if next < 0 {
				break
			}
			off += next + 1
		}
	})
}
