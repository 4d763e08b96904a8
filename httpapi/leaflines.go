package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tapproof/tapproof"
)

// Leaves are served as JSON lines, one tapproof.Leaf per line, exactly as
// encoding/json writes them: {"index":N,"leaf":"BASE64"}. Reading a log back
// is a million of them, and reflection and JSON's byte-by-byte scan of the
// base64 were a third of what serving and reading one cost, so both sides
// write and read that form directly. Any other valid JSON for a leaf is
// still read, by encoding/json.

const (
	leafLinePrefix = `{"index":`
	leafLineMiddle = `,"leaf":"`
	leafLineSuffix = `"}`
)

// appendLeafLine appends the JSON line of a leaf: what json.Marshal gives
// for tapproof.Leaf{Index: index, Bytes: leaf}, and a newline.
func appendLeafLine(b []byte, index uint64, leaf []byte) []byte {
	b = append(b, leafLinePrefix...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, leafLineMiddle...)
	b = base64.StdEncoding.AppendEncode(b, leaf)
	return append(b, leafLineSuffix+"\n"...)
}

// parseLeafLines decodes JSON lines of leaves.
func parseLeafLines(b []byte) ([]tapproof.Leaf, error) {
	var out []tapproof.Leaf
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		b = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		l, err := parseLeafLine(line)
		if err != nil {
			return nil, fmt.Errorf("leaf %d of the page: %w", len(out), err)
		}
		out = append(out, l)
	}
	return out, nil
}

var errNotCanonical = errors.New("not the canonical form")

// parseLeafLine decodes one line, directly if it is in the form
// appendLeafLine writes, else with encoding/json, strictly.
func parseLeafLine(line []byte) (tapproof.Leaf, error) {
	if l, err := parseCanonical(line); err == nil {
		return l, nil
	}
	var l tapproof.Leaf
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return tapproof.Leaf{}, err
	}
	if dec.More() {
		return tapproof.Leaf{}, errors.New("trailing data after the leaf")
	}
	return l, nil
}

func parseCanonical(line []byte) (tapproof.Leaf, error) {
	rest, ok := bytes.CutPrefix(line, []byte(leafLinePrefix))
	if !ok {
		return tapproof.Leaf{}, errNotCanonical
	}
	digits, rest, ok := bytes.Cut(rest, []byte(leafLineMiddle))
	if !ok || len(digits) == 0 || (len(digits) > 1 && digits[0] == '0') {
		return tapproof.Leaf{}, errNotCanonical
	}
	index, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return tapproof.Leaf{}, errNotCanonical
	}
	enc, ok := bytes.CutSuffix(bytes.TrimRight(rest, "\r"), []byte(leafLineSuffix))
	if !ok {
		return tapproof.Leaf{}, errNotCanonical
	}
	// Base64 has no quote or backslash: a JSON string of it needs no
	// unescaping, and anything else is not canonical.
	leaf, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(enc))), enc)
	if err != nil {
		return tapproof.Leaf{}, errNotCanonical
	}
	return tapproof.Leaf{Index: index, Bytes: leaf}, nil
}
