package sumlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// GenerateKey returns a new signer key and its verifier key for a log named
// name. The verifier key is what clients put in GOSUMDB; the signer key is
// modgate's secret. name must be what the go command accepts as a checksum
// database name, host[/path], because the go command refuses any other.
func GenerateKey(name string) (skey, vkey string, err error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, name)
}

// checkName accepts host[/path]: a lower-case host name with an optional
// port, then path elements of unreserved URL characters. That is stricter
// than the go command's own rule ("https://"+name must parse back to a host
// and a path, which it also applies here), because the name also becomes a
// directory under every client's GOPATH/pkg/sumdb and a URL path on the
// proxy, where case, "..", escapes and empty elements would each mean
// trouble.
func checkName(name string) error {
	bad := fmt.Errorf("sumlog: invalid checksum database name %q: must be host[/path], no spaces or '+'", name)
	host, path, _ := strings.Cut(name, "/")
	hostname, port, hasPort := strings.Cut(host, ":")
	if hostname == "" || strings.Trim(hostname, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" ||
		hasPort && (port == "" || strings.Trim(port, "0123456789") != "") {
		return bad
	}
	if strings.Contains(name, "/") {
		for _, elem := range strings.Split(path, "/") {
			if elem == "" || elem == "." || elem == ".." ||
				strings.Trim(elem, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~") != "" {
				return bad
			}
		}
	}
	u, err := url.Parse("https://" + name)
	if err != nil || u.Host != host || u.RawPath != "" ||
		*u != (url.URL{Scheme: "https", Host: u.Host, Path: u.Path}) {
		return bad
	}
	return nil
}

// checkKeys makes sure signer and verifier are one key pair with a usable
// name: a log signed with one key and checked with another would refuse to
// open after its first restart, long after the mistake.
func checkKeys(signer note.Signer, verifier note.Verifier) error {
	if signer == nil || verifier == nil {
		return fmt.Errorf("sumlog: need both a signer and a verifier")
	}
	if err := checkName(verifier.Name()); err != nil {
		return err
	}
	if signer.Name() != verifier.Name() || signer.KeyHash() != verifier.KeyHash() {
		return fmt.Errorf("sumlog: signer %s+%08x and verifier %s+%08x are different keys",
			signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
	}
	msg, err := note.Sign(&note.Note{Text: "modgate sumlog key check\n"}, signer)
	if err != nil {
		return fmt.Errorf("sumlog: signing with %s: %w", signer.Name(), err)
	}
	if _, err := note.Open(msg, note.VerifierList(verifier)); err != nil {
		return fmt.Errorf("sumlog: signer and verifier %s are not one key pair: %w", verifier.Name(), err)
	}
	return nil
}

// ParseKey returns the signer for a signing key as `modgate keys generate`
// writes it ("PRIVATE+KEY+<name>+<hash>+<key>", surrounding space ignored),
// its verifier, and the verifier key that clients put in GOSUMDB. Errors
// never include the key.
func ParseKey(skey string) (note.Signer, note.Verifier, string, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, nil, "", fmt.Errorf("sumlog: not a checksum database signing key (want PRIVATE+KEY+<name>+<hash>+<key>)")
	}
	// The key data is the algorithm byte (1: Ed25519) and the seed; the
	// verifier key is the public half, which note has no function to derive.
	// "PRIVATE+KEY+<name>+<hash>+<base64>"; base64 itself may contain '+'.
	fields := strings.SplitN(skey, "+", 5)
	if len(fields) != 5 {
		return nil, nil, "", fmt.Errorf("sumlog: not a checksum database signing key (want PRIVATE+KEY+<name>+<hash>+<key>)")
	}
	raw, err := base64.StdEncoding.DecodeString(fields[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, nil, "", fmt.Errorf("sumlog: signing key for %s is not an Ed25519 key", signer.Name())
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return nil, nil, "", err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, nil, "", err
	}
	if err := checkKeys(signer, verifier); err != nil {
		return nil, nil, "", err
	}
	return signer, verifier, vkey, nil
}
