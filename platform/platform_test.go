package platform

import (
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestVerifierKeyFromSignerKey(t *testing.T) {
	// Enough keys that some base64 encodings contain '+'.
	for range 50 {
		skey, vkey, err := note.GenerateKey(nil, "tapproof.local/log/flint")
		if err != nil {
			t.Fatal(err)
		}
		got, err := verifierKey(skey)
		if err != nil {
			t.Fatalf("verifierKey(%q): %v", skey, err)
		}
		if got != vkey {
			t.Errorf("verifierKey(signer key) = %q, want %q", got, vkey)
		}
	}
	if _, err := verifierKey("PRIVATE+KEY+x+00000000+AAAA"); err == nil {
		t.Error("verifierKey of a malformed key succeeded")
	}
}

func TestLogKeyIsCreatedOnce(t *testing.T) {
	p := &app{cfg: Config{DataDir: t.TempDir()}}
	first, err := p.logKey("flint", "tapproof.local/log/flint")
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.logKey("flint", "tapproof.local/log/flint")
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Errorf("second logKey = %q, want the first key %q kept", again, first)
	}
	if _, err := p.logKey("flint", "other.origin/flint"); err == nil {
		t.Error("logKey accepted an existing key made for another origin")
	}
}
