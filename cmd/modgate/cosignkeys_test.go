package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/sbom/sbomtest"
)

// TestCosignKeys: after a rotation the key that signed earlier versions is
// served beside the current one, named by the digest modgate's bundles
// hint at, so a consumer finds the key that verifies a given bundle.
func TestCosignKeys(t *testing.T) {
	old, signer := sbomtest.NewSigner(t), sbomtest.NewSigner(t)
	if err := signer.AddPrevious(old.PublicKeyPEM()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if err := mountCosignKeys(mux, signer); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	if code, body := get("/.well-known/modgate/cosign.pub"); code != 200 || !bytes.Equal(body, signer.PublicKeyPEM()) {
		t.Fatalf("cosign.pub: %d %s", code, body)
	}
	code, body := get("/.well-known/modgate/cosign-keys.json")
	var index struct{ Keys []cosignKey }
	if code != 200 || json.Unmarshal(body, &index) != nil || len(index.Keys) != 2 || !index.Keys[0].Current || index.Keys[1].Current {
		t.Fatalf("cosign-keys.json: %d %s", code, body)
	}
	// Each bundle's hint leads to the key that verifies it.
	doc := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	for _, s := range []*sbom.Signer{signer, old} {
		_, bundle, err := s.SignBlob(doc)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			VerificationMaterial struct {
				PublicKey struct{ Hint string }
			}
		}
		if err := json.Unmarshal(bundle, &b); err != nil {
			t.Fatal(err)
		}
		var found *cosignKey
		for i, k := range index.Keys {
			if k.Hint == b.VerificationMaterial.PublicKey.Hint {
				found = &index.Keys[i]
			}
		}
		if found == nil {
			t.Fatalf("no key for hint %q in %s", b.VerificationMaterial.PublicKey.Hint, body)
		}
		code, key := get(found.URL)
		if code != 200 || !bytes.Equal(key, s.PublicKeyPEM()) {
			t.Fatalf("%s: %d %s", found.URL, code, key)
		}
		if err := sbom.VerifyBundle(key, doc, bundle); err != nil {
			t.Errorf("the served key does not verify its bundle: %v", err)
		}
	}
	if code, _ := get("/.well-known/modgate/cosign/0000.pub"); code != 404 {
		t.Errorf("unknown key: %d", code)
	}
}
