package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapproof/tapproof"
)

// The lines written are those encoding/json writes, and what is read is
// what encoding/json reads, canonical or not.
func TestLeafLinesAreJSON(t *testing.T) {
	var page []byte
	var want []tapproof.Leaf
	for i, n := range []int{0, 1, 2, 3, 700, 16 << 10} {
		leaf := make([]byte, n)
		rand.Read(leaf)
		l := tapproof.Leaf{Index: uint64(i) * 1_000_003, Bytes: leaf}
		line := appendLeafLine(nil, l.Index, l.Bytes)
		j, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(line, append(j, '\n')) {
			t.Fatalf("leaf of %d bytes: line %q, encoding/json %q", n, line, j)
		}
		page = append(page, line...)
		if n == 0 {
			l.Bytes = []byte{} // as encoding/json reads ""
		}
		want = append(want, l)
	}
	got, err := parseLeafLines(page)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("parsed (-want +got):\n%s", diff)
	}

	// Other valid JSON is read as encoding/json reads it.
	for _, line := range []string{
		`{"leaf":"AQID","index":7}`,
		`{ "index" : 7 , "leaf" : "AQID" }`,
		`{"index":7,"leaf":"\u0041QID"}`,
	} {
		got, err := parseLeafLines([]byte(line + "\n"))
		if err != nil || len(got) != 1 || got[0].Index != 7 || fmt.Sprint(got[0].Bytes) != fmt.Sprint([]byte{1, 2, 3}) {
			t.Errorf("%s: %+v, %v", line, got, err)
		}
	}
	// And what is not a leaf is an error, canonical-looking or not.
	for _, line := range []string{
		`{"index":07,"leaf":"AQID"}`,
		`{"index":7,"leaf":"AQI"}`,
		`{"index":-1,"leaf":"AQID"}`,
		`{"index":7,"leaf":"AQID","extra":1}`,
		`{"index":7,"leaf":"AQID"} {"index":8,"leaf":"AQID"}`,
		`{"index":18446744073709551616,"leaf":"AQID"}`,
		`not json`,
	} {
		if got, err := parseLeafLines([]byte(line + "\n")); err == nil {
			t.Errorf("%s: read as %+v", line, got)
		}
	}
}

func BenchmarkLeafLines(b *testing.B) {
	leaf := make([]byte, 700)
	rand.Read(leaf)
	var page []byte
	for i := range 1000 {
		page = appendLeafLine(page, uint64(i), leaf)
	}
	b.Run("write", func(b *testing.B) {
		buf := make([]byte, 0, len(page))
		for b.Loop() {
			buf = buf[:0]
			for i := range 1000 {
				buf = appendLeafLine(buf, uint64(i), leaf)
			}
		}
	})
	b.Run("write/encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			enc := json.NewEncoder(&buf)
			for i := range 1000 {
				enc.Encode(tapproof.Leaf{Index: uint64(i), Bytes: leaf})
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			if _, err := parseLeafLines(page); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read/encoding-json", func(b *testing.B) {
		for b.Loop() {
			dec := json.NewDecoder(bytes.NewReader(page))
			for dec.More() {
				var l tapproof.Leaf
				if err := dec.Decode(&l); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
