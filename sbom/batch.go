package sbom

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/module"
)

// batchPayload is the statement SignSummaries signs, as JSON: the statement
// of the first summary, about resourceURI, with every summary's subject and
// inputs. It is written directly rather than built as maps and structs for
// encoding/json to sort, reflect over and scan again: a re-verification
// run signs one batch per shard of thousands, a few hundred bytes each.
// The bytes are those json.Marshal makes of the same statement
// (TestBatchPayloadAgrees).
// The statement is appended to dst.
func batchPayload(dst []byte, sums []Summary, resourceURI string) ([]byte, error) {
	if len(sums) == 0 {
		return nil, errors.New("verification summary: no subjects")
	}
	first := sums[0]
	first.byDirHash = true
	st, err := first.statement()
	if err != nil {
		return nil, summaryError(first, err)
	}
	// The statement as encoding/json writes a statement
	// (TestBatchPayloadAgrees), into one buffer: the subjects in a pass
	// that checks each summary, the inputs in a second.
	p := &st.Predicate
	b := slices.Grow(dst, 1024+len(sums)*384)
	b = append(b, `{"_type":`...)
	b = appendString(b, st.Type)
	b = append(b, `,"subject":[`...)
	var escaped struct{ path, esc string } // of the last module path
	inputs := 0
	for i := range sums {
		sum := sums[i]
		sum.byDirHash = true
		h1, err := sum.check()
		if err != nil {
			return nil, summaryError(sum, err)
		}
		if sum.PolicyURI != first.PolicyURI || !sum.Verified.Equal(first.Verified) {
			return nil, errors.New("verification summary: summaries of one batch differ in policy or time")
		}
		if i > 0 {
			b = append(b, ',')
		}
		if sum.Module != escaped.path {
			escaped.path = sum.Module
			escaped.esc, _ = module.EscapePath(sum.Module) // checked
		}
		b = appendSubject(b, escaped.esc, sum, h1)
		inputs += len(sum.Inputs)
	}
	b = append(b, `],"predicateType":`...)
	b = appendString(b, st.PredicateType)
	b = append(b, `,"predicate":{"verifier":{"id":`...)
	b = appendString(b, p.Verifier.ID)
	if len(p.Verifier.Version) > 0 {
		b = append(b, `,"version":`...)
		b = appendMap(b, p.Verifier.Version)
	}
	b = append(b, `},"timeVerified":`...)
	b = appendString(b, p.TimeVerified)
	b = append(b, `,"resourceUri":`...)
	b = appendString(b, resourceURI)
	b = append(b, `,"policy":`...)
	b = appendDescriptor(b, p.Policy)
	if inputs > 0 {
		b = append(b, `,"inputAttestations":[`...)
		n := 0
		for i := range sums {
			for _, in := range sums[i].Inputs {
				if n > 0 {
					b = append(b, ',')
				}
				b = appendDescriptor(b, in)
				n++
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"verificationResult":`...)
	b = appendString(b, p.VerificationResult)
	b = append(b, `,"verifiedLevels":`...)
	if p.VerifiedLevels == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, l := range p.VerifiedLevels {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, l)
		}
		b = append(b, ']')
	}
	if p.SLSAVersion != "" {
		b = append(b, `,"slsaVersion":`...)
		b = appendString(b, p.SLSAVersion)
	}
	return append(b, "}}"...), nil
}

func summaryError(sum Summary, err error) error {
	return &module.ModuleError{Path: sum.Module, Version: sum.Version, Err: fmt.Errorf("verification summary: %w", err)}
}

// appendSubject appends the subject of sum (checked: h1 is its dirHash,
// escPath its escaped module path): the zip by name, dirHash and, when
// known, SHA-256.
func appendSubject(b []byte, escPath string, sum Summary, h1 string) []byte {
	escVersion, _ := module.EscapeVersion(sum.Version)
	b = append(b, `{"name":`...)
	b = appendString(b, escPath+"/@v/"+escVersion+".zip")
	b = append(b, `,"digest":{"dirHash":`...)
	b = appendString(b, h1)
	if sum.ZipSHA256 != "" {
		b = append(b, `,"sha256":`...)
		b = appendString(b, sum.ZipSHA256)
	}
	return append(b, "}}"...)
}

// appendDescriptor appends d as encoding/json encodes a ResourceDescriptor:
// its fields in order, empty ones left out, digests by algorithm in sorted
// order.
func appendDescriptor(b []byte, d ResourceDescriptor) []byte {
	b = append(b, '{')
	n := len(b)
	field := func(name string) {
		if len(b) > n {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
	}
	if d.Name != "" {
		field("name")
		b = appendString(b, d.Name)
	}
	if d.URI != "" {
		field("uri")
		b = appendString(b, d.URI)
	}
	if len(d.Digest) > 0 {
		field("digest")
		b = appendMap(b, d.Digest)
	}
	if d.MediaType != "" {
		field("mediaType")
		b = appendString(b, d.MediaType)
	}
	return append(b, '}')
}

// appendMap appends m as a JSON object, its keys in order. A digest map
// holds one key or two: those are ordered without sorting a slice.
func appendMap(b []byte, m map[string]string) []byte {
	entry := func(b []byte, k string) []byte {
		b = appendString(b, k)
		b = append(b, ':')
		return appendString(b, m[k])
	}
	b = append(b, '{')
	switch len(m) {
	case 0:
	case 1, 2:
		var ks [2]string
		n := 0
		for k := range m {
			ks[n] = k
			n++
		}
		if n == 2 && ks[1] < ks[0] {
			ks[0], ks[1] = ks[1], ks[0]
		}
		b = entry(b, ks[0])
		if n == 2 {
			b = append(b, ',')
			b = entry(b, ks[1])
		}
	default:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = entry(b, k)
		}
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, as encoding/json writes it:
// plain printable ASCII as is, anything else through json.Marshal (which
// escapes quotes, backslashes, control characters, <, > and &, and invalid
// UTF-8).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain are the bytes encoding/json writes in a string as they are.
var plain = func() (t [256]bool) {
	for c := ' '; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, c)
	}
	return t
}()

// dsseEnvelope is the DSSE envelope of payload with one signature sig, as
// json.Marshal writes a dsse.Envelope with no key id (TestDSSEEnvelope):
// base64 needs no escaping, and a batch's payload is large enough that
// scanning it for some again is noticeable.
func dsseEnvelope(payloadType string, payload, sig []byte) []byte {
	enc := base64.StdEncoding
	// The JSON around them is 66 bytes and the payload type; room for the
	// newline .intoto.jsonl ends with.
	b := make([]byte, 0, enc.EncodedLen(len(payload))+enc.EncodedLen(len(sig))+2*len(payloadType)+80)
	b = append(b, `{"payloadType":`...)
	b = appendString(b, payloadType)
	b = append(b, `,"payload":"`...)
	b = enc.AppendEncode(b, payload)
	b = append(b, `","signatures":[{"keyid":"","sig":"`...)
	b = enc.AppendEncode(b, sig)
	return append(b, `"}]}`...)
}

// paeHeader is the DSSE pre-authentication encoding of a payload of n bytes
// of payloadType, less the payload itself, which follows it
// (ssldsse.PAE; TestPAEHeader).
func paeHeader(payloadType string, n int) []byte {
	b := make([]byte, 0, 48+len(payloadType))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ' ')
}

// batchBufs hold the payloads of batch statements while they are signed.
var batchBufs = sync.Pool{New: func() any { return new([]byte) }}
