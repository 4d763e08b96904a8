package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/signed"
)

// readLog reads utility's whole log back from the tapproof API at server:
// the latest checkpoint, whose signature logKey must verify, and every leaf
// it covers, which must hash to its root (anchor.Replay). So the leaves it
// returns are provably all of the log's compliance entries at that size:
// every lab sample, invalidation and notice record, none left out. It keeps
// only those, not the readings and enrollments. It returns the checkpoint
// too.
func readLog(ctx context.Context, server, utility string, logKey note.Verifier) ([]tapproof.Leaf, []byte, error) {
	base := strings.TrimSuffix(server, "/") + "/v1/logs/" + url.PathEscape(utility)
	signedCP, err := httpGet(ctx, base+"/checkpoint", 64<<10)
	if err != nil {
		return nil, nil, err
	}
	cp, err := anchor.OpenCheckpoint(signedCP, logKey)
	if err != nil {
		return nil, nil, fmt.Errorf("log %s: %w", utility, err)
	}
	replay := anchor.NewReplay()
	var kept []tapproof.Leaf
	for replay.Size() < cp.Size {
		start := replay.Size()
		page, err := httpGet(ctx, fmt.Sprintf("%s/leaves?start=%d&count=%d", base, start, min(cp.Size-start, httpapi.MaxLeaves)), 1<<30)
		if err != nil {
			return nil, nil, err
		}
		dec := json.NewDecoder(bytes.NewReader(page))
		n := 0
		for dec.More() {
			var l tapproof.Leaf
			if err := dec.Decode(&l); err != nil {
				return nil, nil, fmt.Errorf("log %s leaves from %d: %w", utility, start, err)
			}
			if l.Index != replay.Size() || l.Index >= cp.Size {
				return nil, nil, fmt.Errorf("log %s: leaf %d served where leaf %d of %d was due", utility, l.Index, replay.Size(), cp.Size)
			}
			if err := replay.Append(l.Bytes); err != nil {
				return nil, nil, err
			}
			if complianceLeaf(l.Bytes) {
				kept = append(kept, l)
			}
			n++
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("log %s: the server stopped at leaf %d of the %d its checkpoint covers", utility, start, cp.Size)
		}
	}
	if err := replay.Verify(cp); err != nil {
		return nil, nil, fmt.Errorf("log %s: %w", utility, err)
	}
	return kept, signedCP, nil
}

// complianceLeaf reports whether a report may need leaf: anything but a
// sensor's reading or a device enrollment.
func complianceLeaf(leaf []byte) bool {
	env, err := signed.Parse(leaf, 0)
	if err != nil {
		return true // a notice record, or what FromLeaves will skip
	}
	switch env.PayloadType() {
	case tapproof.ReadingPayloadType, tapproof.EnrollmentPayloadType:
		return false
	}
	return true
}

// httpGet returns the body of a successful GET of u, of at most max bytes.
func httpGet(ctx context.Context, u string, max int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b[:min(len(b), 200)])))
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("GET %s: more than %d bytes", u, max)
	}
	return b, nil
}
