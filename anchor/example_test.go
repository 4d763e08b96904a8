package anchor_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof/anchor"
)

var update = flag.Bool("update", false, "regenerate the example bundle and log key in testdata")

const (
	exampleBundle = "testdata/example-bundle.json"
	exampleLogKey = "testdata/example-log.vkey"
)

// A regulator checks a bundle offline with nothing but the log's public key:
// the device key comes from the enrollment the bundle carries.
func ExampleVerifyBundle() {
	vkey, err := os.ReadFile(exampleLogKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	logKey, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, err := os.ReadFile(exampleBundle)
	if err != nil {
		fmt.Println(err)
		return
	}
	var b anchor.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		fmt.Println(err)
		return
	}

	v, err := anchor.VerifyBundle(context.Background(), &b, logKey, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := v.Reading
	fmt.Printf("%s: %s %s %v %s at %s is entry %d of %d; device enrolled at entry %d\n",
		v.Origin, r.Key(), r.Analyte, r.Value, r.Unit, r.Site, v.Index, v.Size, v.EnrollmentIndex)

	// Lower the logged value after the fact: the leaf no longer hashes to
	// what the checkpoint commits to.
	b.Leaf = []byte(strings.Replace(string(b.Leaf), "payload\":\"", "payload\":\"X", 1))
	_, err = anchor.VerifyBundle(context.Background(), &b, logKey, nil)
	if ve, ok := errors.AsType[*anchor.VerifyError](err); ok {
		fmt.Println("tampered bundle fails the", ve.Check, "check")
	}
	// Output:
	// tapproof.local/log/flint: d1-2 lead 5.5 ug/L at site-1 is entry 2 of 3; device enrolled at entry 0
	// tampered bundle fails the inclusion check
}

// TestExampleData regenerates the example's bundle and key with -update.
func TestExampleData(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata")
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	key := newDeviceKey(t)
	l := newMemLogWithKey(t, s, v, signEnrollment(t, key, "d1"), signReading(t, key, testReading("d1", 1)), signReading(t, key, testReading("d1", 2)))
	raw, err := json.MarshalIndent(l.readingBundle(t, 2, 0), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exampleBundle, append(raw, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exampleLogKey, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
