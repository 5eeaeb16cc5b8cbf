package sbom

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// FuzzVerifySummary: envelopes read back from a store are outside input;
// whatever they hold, opening one and asking about it returns an error or
// an answer, never panics.
func FuzzVerifySummary(f *testing.F) {
	k := keys(f)
	zip := strings.Repeat("0a", 32)
	env, err := k.signer.SignSummary(testSummary(zip))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, envelope []byte) {
		if s, err := OpenSummary(k.pubPEM, envelope, nil); err == nil {
			s.HasZip(zip)
			s.AdmissionOf("corp.example/m", "v1.2.3", zip, "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
		}
	})
}

// FuzzVerifyBundle: bundles are outside input too.
func FuzzVerifyBundle(f *testing.F) {
	k := keys(f)
	data := []byte("blob")
	_, bundle, err := k.signer.SignBlob(data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bundle)
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","messageSignature":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		VerifyBundle(k.pubPEM, data, b)
	})
}

// FuzzEnvelopePayload: on a memo hit OpenSummary reads the payload itself
// (envelopePayload) instead of taking it from the DSSE verifier. For any
// envelope the verifier would accept, were its signature good, it must
// read the very payload the verifier hands over.
func FuzzEnvelopePayload(f *testing.F) {
	k := keys(f)
	env, err := k.signer.SignSummary(testSummary(strings.Repeat("0a", 32)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30","signatures":[{"sig":"AA=="}]}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"-_8=","payload":"e30=","signatures":[{"sig":""}]}`))
	v, err := loadVerifier(k.pubPEM)
	if err != nil {
		f.Fatal(err)
	}
	decoded := func(envelope []byte) ([]byte, bool) {
		var payload []byte
		dv := dsse.WrapVerifier(acceptAll{v}, dsse.WithExpectedPayloadType(inTotoPayloadType), dsse.WithDecodedPayload(&payload))
		return payload, dv.VerifySignature(bytes.NewReader(envelope), nil) == nil
	}
	if p, ok := decoded([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`)); !ok || string(p) != "{}" {
		f.Fatalf("the accept-all verifier refuses a well-formed envelope (%q): the target would test nothing", p)
	}
	f.Fuzz(func(t *testing.T, envelope []byte) {
		want, ok := decoded(envelope)
		if !ok {
			return
		}
		got, err := envelopePayload(envelope)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("envelopePayload = %q, %v; the verifier decoded %q", got, err, want)
		}
	})
}

// acceptAll is a verifier whose every signature is good.
type acceptAll struct{ signature.Verifier }

func (acceptAll) VerifySignature(io.Reader, io.Reader, ...signature.VerifyOption) error { return nil }
