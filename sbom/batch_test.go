package sbom

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// marshalBatch is the batch statement as encoding/json makes it: each
// summary's statement merged into the first's. batchPayload must give the
// same bytes.
func marshalBatch(sums []Summary, resourceURI string) ([]byte, error) {
	var st *statement
	for i, sum := range sums {
		sum.byDirHash = true
		one, err := sum.statement()
		if err != nil {
			return nil, err
		}
		if i == 0 {
			st = one
			st.Predicate.ResourceURI = resourceURI
			continue
		}
		if one.Predicate.Policy.URI != st.Predicate.Policy.URI || one.Predicate.TimeVerified != st.Predicate.TimeVerified {
			return nil, errors.New("differ")
		}
		st.Subject = append(st.Subject, one.Subject...)
		st.Predicate.InputAttestations = append(st.Predicate.InputAttestations, one.Predicate.InputAttestations...)
	}
	return json.Marshal(st)
}

// TestBatchPayloadAgrees: the batch statement written directly is the one
// encoding/json writes, byte for byte: subjects with and without SHA-256,
// inputs with every field or few, several digests, strings encoding/json
// escapes, no inputs at all; and what it refuses, it refuses.
func TestBatchPayloadAgrees(t *testing.T) {
	a := testSummary(strings.Repeat("0a", 32))
	b := testSummary("")
	b.Version, b.ZipHash = "v1.2.4", "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	c := testSummary(strings.Repeat("0c", 32))
	c.Module, c.Version = "corp.example/Upper/v2", "v2.0.0-rc.1+incompatible"
	c.Inputs = []ResourceDescriptor{
		{Name: "v2.spdx.json", Digest: map[string]string{"sha512": "ff", "sha256": "ee", "md5": "aa"}},
		{URI: "https://x.example/a?b=<c>&d=\"e\"", Digest: map[string]string{"sha256": "\u00e9\x01"}, MediaType: "text/plain; é"},
		{Name: "bad\xffutf8", Digest: map[string]string{"\\": "/"}},
	}
	d := testSummary(strings.Repeat("0d", 32))
	d.Inputs = nil
	d.VerifierVersion, d.PolicyDigest = "", ""
	for _, tc := range []struct {
		name string
		sums []Summary
	}{
		{"one", []Summary{a}},
		{"two", []Summary{a, b}},
		{"escapes", []Summary{c, a}},
		{"no inputs", []Summary{d}},
		{"mixed", []Summary{d, a, b, c}},
	} {
		got, err := batchPayload(nil, tc.sums, "https://modgate.example/reverify/run<1>")
		want, werr := marshalBatch(tc.sums, "https://modgate.example/reverify/run<1>")
		if err != nil || werr != nil {
			t.Fatalf("%s: %v, %v", tc.name, err, werr)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\ngot  %s\nwant %s", tc.name, got, want)
		}
	}
	later := a
	later.Verified = a.Verified.Add(time.Second)
	noDigest := a
	noDigest.Inputs = []ResourceDescriptor{{Name: "x"}}
	for _, sums := range [][]Summary{nil, {a, later}, {a, noDigest}} {
		if _, err := batchPayload(nil, sums, "x"); err == nil {
			t.Errorf("%d summaries: accepted", len(sums))
		}
	}
}

// FuzzAppendDescriptor: any descriptor is written as encoding/json writes
// it.
func FuzzAppendDescriptor(f *testing.F) {
	f.Add("v1.0.0.spdx.json", "", "sha256", strings.Repeat("ab", 32), "application/spdx+json")
	f.Add("<&>", "\x00\u2028", "", "", "é")
	f.Fuzz(func(t *testing.T, name, uri, alg, value, mediaType string) {
		d := ResourceDescriptor{Name: name, URI: uri, MediaType: mediaType}
		if alg != "" || value != "" {
			d.Digest = map[string]string{alg: value, "sha256": value + alg}
		}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendDescriptor(nil, d); !bytes.Equal(got, want) {
			t.Errorf("%q:\ngot  %s\nwant %s", fmt.Sprint(d), got, want)
		}
	})
}

// BenchmarkSignSummaries is the cost per version of signing a batch of
// 500 re-verified versions, against encoding/json's statement.
func BenchmarkSignSummaries(b *testing.B) {
	sums := make([]Summary, 500)
	for i := range sums {
		sums[i] = testSummary(fmt.Sprintf("%064x", i))
		sums[i].Version = fmt.Sprintf("v1.0.%d", i)
		sums[i].Inputs = []ResourceDescriptor{{Name: sums[i].Version + ".spdx.json", MediaType: "application/spdx+json",
			Digest: map[string]string{"sha256": fmt.Sprintf("%064x", i+1)}}}
	}
	k := keys(b)
	for _, bc := range []struct {
		name    string
		payload func([]Summary, string) ([]byte, error)
	}{{"direct", func(s []Summary, uri string) ([]byte, error) { return batchPayload(nil, s, uri) }}, {"encoding-json", marshalBatch}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.payload(sums, "run"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sums)), "ns/version")
		})
	}
	b.Run("signed", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.signer.SignSummaries(sums, "run"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sums)), "ns/version")
	})
}

// TestDSSEEnvelope: the envelope written directly is json.Marshal's.
func TestDSSEEnvelope(t *testing.T) {
	for _, payload := range []string{"", "{}", strings.Repeat("<&>\x00\xff", 100)} {
		sig := []byte("signature\x00\xfe")
		want, err := json.Marshal(ssldsse.Envelope{PayloadType: inTotoPayloadType,
			Payload:    base64.StdEncoding.EncodeToString([]byte(payload)),
			Signatures: []ssldsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}})
		if err != nil {
			t.Fatal(err)
		}
		if got := dsseEnvelope(inTotoPayloadType, []byte(payload), sig); !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// TestPAEHeader: the header and the payload are DSSE's encoding.
func TestPAEHeader(t *testing.T) {
	for _, payload := range []string{"", "x", strings.Repeat("é", 1000)} {
		got := append(paeHeader(inTotoPayloadType, len(payload)), payload...)
		if want := ssldsse.PAE(inTotoPayloadType, []byte(payload)); !bytes.Equal(got, want) {
			t.Errorf("got %q\nwant %q", got, want)
		}
	}
}
