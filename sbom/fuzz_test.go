package sbom

import (
	"strings"
	"testing"
)

// FuzzVerifySummary: envelopes read back from a store are outside input;
// whatever they hold, VerifySummary returns an error or nil, never panics.
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
		VerifySummary(k.pubPEM, envelope, zip)
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
