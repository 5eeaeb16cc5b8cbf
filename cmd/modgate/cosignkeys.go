package main

import (
	"encoding/json"
	"net/http"

	"github.com/modgate/modgate/sbom"
)

// cosignKey is one public key in /.well-known/modgate/cosign-keys.json.
type cosignKey struct {
	// SHA256 is the hex SHA-256 of the key's DER encoding; the key is
	// served at URL.
	SHA256 string `json:"sha256"`
	// Hint is the same digest in base64: what modgate's bundles name as
	// the key that signed them (verificationMaterial.publicKey.hint).
	Hint string `json:"hint"`
	URL  string `json:"url"`
	// Current is the key modgate signs with now; the others are
	// signing.previous_public_keys, which signed what was published
	// before a rotation.
	Current bool `json:"current"`
}

// mountCosignKeys serves the keys that verify what modgate signed:
//
//	/.well-known/modgate/cosign.pub            the current key
//	/.well-known/modgate/cosign/<sha256>.pub   each key, current and previous
//	/.well-known/modgate/cosign-keys.json      their list
//
// so that versions signed before a rotation can be checked by consumers
// with the key that signed them (cosign verify-blob --key <that file>).
func mountCosignKeys(mux *http.ServeMux, signer *sbom.Signer) error {
	pems := append([][]byte{signer.PublicKeyPEM()}, signer.PreviousKeys()...)
	byID := make(map[string][]byte, len(pems))
	var keys []cosignKey
	for i, pub := range pems {
		id, hint, err := sbom.KeyID(pub)
		if err != nil {
			return err
		}
		byID[id+".pub"] = pub
		keys = append(keys, cosignKey{SHA256: id, Hint: hint, URL: "/.well-known/modgate/cosign/" + id + ".pub", Current: i == 0})
	}
	index, err := json.MarshalIndent(struct {
		Keys []cosignKey `json:"keys"`
	}{keys}, "", "  ")
	if err != nil {
		return err
	}
	index = append(index, '\n')
	pem := func(pub []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(pub)
		}
	}
	mux.Handle("GET /.well-known/modgate/cosign.pub", pem(pems[0]))
	mux.HandleFunc("GET /.well-known/modgate/cosign/{name}", func(w http.ResponseWriter, r *http.Request) {
		pub, ok := byID[r.PathValue("name")]
		if !ok {
			http.Error(w, "no such key: see /.well-known/modgate/cosign-keys.json", http.StatusNotFound)
			return
		}
		pem(pub)(w, r)
	})
	mux.HandleFunc("GET /.well-known/modgate/cosign-keys.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(index)
	})
	return nil
}
