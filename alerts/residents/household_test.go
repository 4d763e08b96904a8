package residents_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/residents"
)

func householdCodes(t *testing.T, key byte) *residents.HouseholdCodes {
	t.Helper()
	h, err := residents.NewHouseholdCodes(bytes.Repeat([]byte{key}, residents.HouseholdKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var codeShape = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`)

// TestHouseholdCode: a code is four groups of four Crockford base32
// digits, bound to its utility, lab, sample and key; it is checked however
// the household types it, and nothing else passes.
func TestHouseholdCode(t *testing.T) {
	h := householdCodes(t, 1)
	code, err := h.Code("springfield", "acme-labs", "L2026-00123")
	if err != nil {
		t.Fatal(err)
	}
	if !codeShape.MatchString(code) {
		t.Fatalf("Code = %q, want XXXX-XXXX-XXXX-XXXX in Crockford base32", code)
	}
	if again, _ := h.Code("springfield", "acme-labs", "L2026-00123"); again != code {
		t.Errorf("Code is not deterministic: %q then %q", code, again)
	}
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	typed = strings.ReplaceAll(strings.ReplaceAll(typed, "0", "o"), "1", "l")
	for _, c := range []string{code, strings.ReplaceAll(code, "-", ""), typed, " " + code + " "} {
		if !h.Check("springfield", "acme-labs", "L2026-00123", c) {
			t.Errorf("Check(%q) = false, want true (the code as typed)", c)
		}
	}
	other := householdCodes(t, 2)
	otherCode, _ := other.Code("springfield", "acme-labs", "L2026-00123")
	flipped := []byte(code)
	if flipped[0] = '0'; code[0] == '0' {
		flipped[0] = '2'
	}
	for name, c := range map[string]string{
		"empty":             "",
		"one digit off":     string(flipped),
		"one digit short":   code[:len(code)-1],
		"one digit more":    code + "7",
		"another key's":     otherCode,
		"another sample's":  must(h.Code("springfield", "acme-labs", "L2026-00124")),
		"another lab's":     must(h.Code("springfield", "other-lab", "L2026-00123")),
		"another utility's": must(h.Code("shelbyville", "acme-labs", "L2026-00123")),
	} {
		if h.Check("springfield", "acme-labs", "L2026-00123", c) {
			t.Errorf("Check(%s: %q) = true, want false", name, c)
		}
	}
	for _, ids := range [][3]string{{"Spring Field", "acme-labs", "L1"}, {"springfield", "acme/labs", "L1"}, {"springfield", "acme-labs", "L1/2"}, {"springfield", "acme-labs", ""}} {
		var rej *tapproof.Rejection
		if _, err := h.Code(ids[0], ids[1], ids[2]); !errors.As(err, &rej) {
			t.Errorf("Code(%q) = %v, want a rejection", ids, err)
		}
	}
	if _, err := residents.NewHouseholdCodes([]byte("short")); err == nil {
		t.Error("NewHouseholdCodes(5 bytes) = nil error")
	}
	if s := h.String() + h.LogValue().String(); strings.Contains(s, "\x01") {
		t.Errorf("HouseholdCodes formats with its key: %q", s)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// TestHouseholdKeyShared: the key is created once, mode 0600, and every
// replica loading the same path, at the same time, gets the same key.
func TestHouseholdKeyShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "household-code.key")
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := residents.LoadOrCreateHouseholdKey(path)
			if err != nil {
				t.Errorf("LoadOrCreateHouseholdKey: %v", err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if len(k) != residents.HouseholdKeySize || !bytes.Equal(k, keys[0]) {
			t.Fatalf("replicas loaded different keys: %x and %x", keys[0], k)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := residents.LoadOrCreateHouseholdKey(path); err == nil {
		t.Error("LoadOrCreateHouseholdKey(garbled file) = nil error, want one (never a new key over it)")
	}
}
