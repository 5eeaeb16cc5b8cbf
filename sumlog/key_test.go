package sumlog

import (
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	// Keys whose base64 holds a '+' are the case a naive split gets wrong.
	var skey, vkey string
	for i := 0; i < 200 && !strings.Contains(strings.SplitN(skey, "+", 5)[len(strings.SplitN(skey, "+", 5))-1], "+"); i++ {
		var err error
		if skey, vkey, err = GenerateKey("sum.corp.example"); err != nil {
			t.Fatal(err)
		}
	}
	signer, verifier, gotVkey, err := ParseKey("  " + skey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if gotVkey != vkey || signer.Name() != "sum.corp.example" || verifier.KeyHash() != signer.KeyHash() {
		t.Errorf("ParseKey: vkey %q, want %q", gotVkey, vkey)
	}
	for _, bad := range []string{"", vkey, "PRIVATE+KEY+x+00000000+AAAA", skey[:len(skey)-4]} {
		_, _, _, err := ParseKey(bad)
		if err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
			continue
		}
		if len(bad) > 20 && strings.Contains(err.Error(), bad[len(bad)-20:]) {
			t.Errorf("ParseKey error leaks key material: %v", err)
		}
	}
}
