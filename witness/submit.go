package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Prover gives consistency proofs of the log being witnessed: the RFC 6962
// proof that the tree of size to extends the tree of size from.
// anchor.Log implements it.
type Prover interface {
	ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error)
}

// The results a submission can have, as Submitter.Observe sees them.
const (
	// ResultCosigned: the witness returned a cosignature that verifies.
	ResultCosigned = "cosigned"
	// ResultConflict: the witness holds another size than the one the
	// proof was from (409); it is asked again from its size.
	ResultConflict = "conflict"
	// ResultAhead: the witness holds a larger tree than the checkpoint,
	// so it cannot cosign it; a later checkpoint may catch up.
	ResultAhead = "ahead"
	// ResultRefused: the witness answered with another error status, for
	// example an unknown log, a signature it does not accept or a proof
	// it found invalid.
	ResultRefused = "refused"
	// ResultFailed: the witness could not be reached, failed, or answered
	// with something that is not a cosignature by its key.
	ResultFailed = "failed"
)

// maxResponse bounds what is read of a witness's answer.
const maxResponse = 64 << 10

// Submitter submits the checkpoints of one log to the witnesses of a
// policy and gathers their cosignatures. It remembers the size each witness
// was last seen to hold, so that it can send the consistency proof from
// there. It is safe for concurrent use, but checkpoints should be submitted
// in increasing size.
type Submitter struct {
	policy *Policy
	log    note.Verifier
	prover Prover
	client *http.Client

	// Observe, if set, is called after each answer or failure of a
	// witness, with one of the Result constants and the error, if any.
	// It is for metrics and logs. Witnesses are asked at once, so it is
	// called from several goroutines at a time.
	Observe func(w Witness, result string, err error)

	mu    sync.Mutex
	sizes map[string]uint64 // by witness URL
}

// NewSubmitter returns a Submitter of the checkpoints signed by logKey to
// the witnesses of policy, with proofs from prover. client nil means an
// http.Client with a 10 s timeout.
func NewSubmitter(policy *Policy, logKey note.Verifier, prover Prover, client *http.Client) *Submitter {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &Submitter{policy: policy, log: logKey, prover: prover, client: client, sizes: make(map[string]uint64)}
}

// Submit sends the signed checkpoint to every witness of the policy at
// once and returns it with the cosignatures that came back and verify
// appended, in the policy's order. If they do not meet the policy, it
// returns what it gathered and an *UnmetError, joined with the reason each
// missing witness gave. A witness that is down costs only its timeout.
func (s *Submitter) Submit(ctx context.Context, signed []byte) ([]byte, error) {
	cp, _, _, err := log.ParseCheckpoint(signed, s.log.Name(), s.log)
	if err != nil {
		return nil, fmt.Errorf("witness: checkpoint to submit: %w", err)
	}
	ws := s.policy.Witnesses()
	lines := make([][]byte, len(ws))
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			lines[i], errs[i] = s.submit(ctx, w, cp, signed)
		})
	}
	wg.Wait()
	out := bytes.Clone(signed)
	for _, l := range lines {
		out = append(out, l...)
	}
	if err := s.policy.Check(out); err != nil {
		return out, errors.Join(append([]error{err}, errs...)...)
	}
	return out, nil
}

// submit gets w's cosignature line for the checkpoint, asking again from
// the size w says it holds if that is not the one expected.
func (s *Submitter) submit(ctx context.Context, w Witness, cp *log.Checkpoint, signed []byte) ([]byte, error) {
	for range 3 {
		old := s.size(w)
		if old > cp.Size {
			err := fmt.Errorf("witness %s holds a tree of %d leaves, larger than the checkpoint's %d", w.Name, old, cp.Size)
			s.observe(w, ResultAhead, err)
			return nil, err
		}
		line, err := s.post(ctx, w, cp, signed, old)
		if c, ok := errors.AsType[*conflictError](err); ok {
			s.setSize(w, c.held)
			s.observe(w, ResultConflict, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		s.setSize(w, cp.Size)
		s.observe(w, ResultCosigned, nil)
		return line, nil
	}
	return nil, fmt.Errorf("witness %s: its size kept changing", w.Name)
}

// conflictError is a witness's 409: it holds another size than old.
type conflictError struct {
	witness   string
	old, held uint64
}

func (e *conflictError) Error() string {
	return fmt.Sprintf("witness %s holds size %d, not %d", e.witness, e.held, e.old)
}

// post makes one add-checkpoint request, from the witness's size old, and
// returns the witness's cosignature line. It observes every failure but a
// *conflictError, which the caller handles.
func (s *Submitter) post(ctx context.Context, w Witness, cp *log.Checkpoint, signed []byte, old uint64) ([]byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	if old > 0 && old < cp.Size {
		proof, err := s.prover.ConsistencyProof(ctx, old, cp.Size)
		if err != nil {
			// Our side's failure, not the witness's: not observed.
			return nil, fmt.Errorf("witness %s: consistency proof from %d to %d: %w", w.Name, old, cp.Size, err)
		}
		for _, h := range proof {
			body.WriteString(base64.StdEncoding.EncodeToString(h))
			body.WriteByte('\n')
		}
	}
	body.WriteByte('\n')
	body.Write(signed)

	fail := func(result string, err error) ([]byte, error) {
		err = fmt.Errorf("witness %s: %w", w.Name, err)
		s.observe(w, result, err)
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, &body)
	if err != nil {
		return fail(ResultFailed, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fail(ResultFailed, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fail(ResultFailed, err)
	}
	switch {
	case resp.StatusCode == http.StatusConflict:
		n, err := strconv.ParseUint(strings.TrimSpace(string(answer)), 10, 63)
		if err != nil {
			return fail(ResultFailed, fmt.Errorf("409 without a size: %q", firstLine(answer)))
		}
		return nil, &conflictError{witness: w.Name, old: old, held: n}
	case resp.StatusCode != http.StatusOK:
		return fail(ResultRefused, fmt.Errorf("%s: %s", resp.Status, firstLine(answer)))
	}
	// The answer is one or more signature lines; keep the one by the
	// witness's key, after checking it signs this checkpoint.
	for l := range strings.Lines(string(answer)) {
		if !strings.HasPrefix(l, "— ") || !strings.HasSuffix(l, "\n") {
			continue
		}
		if Cosigned(append(bytes.Clone(signed), l...), w.Verifier) {
			return []byte(l), nil
		}
	}
	return fail(ResultFailed, fmt.Errorf("no cosignature by its key in its answer %q", firstLine(answer)))
}

func (s *Submitter) size(w Witness) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sizes[w.URL]
}

func (s *Submitter) setSize(w Witness, n uint64) {
	s.mu.Lock()
	s.sizes[w.URL] = n
	s.mu.Unlock()
}

func (s *Submitter) observe(w Witness, result string, err error) {
	if s.Observe != nil {
		s.Observe(w, result, err)
	}
}

func firstLine(b []byte) string {
	l, _, _ := strings.Cut(string(b), "\n")
	if len(l) > 200 {
		l = l[:200] + "..."
	}
	return l
}
