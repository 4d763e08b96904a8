package main

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/signed"
)

// readLog reads utility's whole log back from the tapproof API at server:
// the latest checkpoint, whose signature logKey must verify, and every leaf
// it covers, which must hash to its root (anchor.ReadBack). So the leaves it
// returns are provably all of the log's compliance entries at that size:
// every lab sample, invalidation and notice record, none left out. It keeps
// only those, not the readings and enrollments. It returns the checkpoint
// too.
func readLog(ctx context.Context, server, utility string, logKey note.Verifier) ([]tapproof.Leaf, []byte, error) {
	c := &httpapi.Client{BaseURL: server}
	signedCP, err := c.Checkpoint(ctx, utility)
	if err != nil {
		return nil, nil, err
	}
	cp, err := anchor.OpenCheckpoint(signedCP, logKey)
	if err != nil {
		return nil, nil, fmt.Errorf("log %s: %w", utility, err)
	}
	var kept []tapproof.Leaf
	err = anchor.ReadBack(ctx, c.Log(utility), cp, func(l tapproof.Leaf) {
		if complianceLeaf(l.Bytes) {
			kept = append(kept, l)
		}
	})
	if err != nil {
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
