package witness

import (
	"errors"
	"fmt"
	"os"
	"strings"

	fwitness "github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"
)

// Policy is a parsed witness policy: which witnesses there are, where they
// are reached, and which of them must have cosigned a checkpoint before it
// is trusted.
type Policy struct {
	quorum    fwitness.Group
	witnesses []Witness
}

// Witness is one witness of a policy.
type Witness struct {
	// Name is the name of the witness's key, e.g. "witness.example.org",
	// which its cosignatures carry.
	Name string
	// URL is where checkpoints are submitted: the policy's URL with
	// /add-checkpoint appended.
	URL string
	// Verifier checks the witness's cosignature/v1 signatures.
	Verifier note.Verifier
}

// ParsePolicy parses a witness policy:
//
//	witness state-regulator witness.state.example+1a2b3c4d+BASE64 http://127.0.0.1:7380
//	witness university witness.uni.example+5e6f7a8b+BASE64 http://127.0.0.1:7381
//	group regulators all state-regulator university
//	quorum regulators
//
// Each witness line names a witness, its C2SP verifier key and its base URL.
// group lines combine witnesses or groups with a threshold (a number, any
// or all), and the quorum line names the witness or group that must be
// satisfied; "quorum none" asks for no cosignature at all. A "log" line is
// allowed and ignored: the log's key is given separately.
func ParsePolicy(text []byte) (*Policy, error) {
	quorum, err := fwitness.ParsePolicy(text)
	if err != nil {
		return nil, fmt.Errorf("witness policy: %w", err)
	}
	p := &Policy{quorum: quorum}
	seen := make(map[string]bool)
	var walk func(fwitness.Group)
	walk = func(g fwitness.Group) {
		for _, c := range g.Components {
			switch c := c.(type) {
			case fwitness.Witness:
				if seen[c.URL+" "+c.Key.Name()] {
					continue
				}
				seen[c.URL+" "+c.Key.Name()] = true
				p.witnesses = append(p.witnesses, Witness{Name: c.Key.Name(), URL: c.URL, Verifier: c.Key})
			case fwitness.Group:
				walk(c)
			}
		}
	}
	walk(quorum)
	return p, nil
}

// ReadPolicyFile reads and parses the witness policy in the file at path.
func ReadPolicyFile(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("witness policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Witnesses returns the witnesses the quorum draws on, in the policy's
// order. Witnesses the policy defines but its quorum does not use are left
// out: nothing would be gained by asking them.
func (p *Policy) Witnesses() []Witness { return p.witnesses }

// Satisfied reports whether the cosignatures on the signed checkpoint meet
// the policy.
func (p *Policy) Satisfied(signed []byte) bool { return p.quorum.Satisfied(signed) }

// Check returns nil if the cosignatures on the signed checkpoint meet the
// policy, and otherwise an *UnmetError that names the witnesses whose
// cosignature is missing. It checks cosignatures only: the log's own
// signature is for the caller to check, with the log's key.
func (p *Policy) Check(signed []byte) error {
	if p.Satisfied(signed) {
		return nil
	}
	e := &UnmetError{}
	for _, w := range p.witnesses {
		if Cosigned(signed, w.Verifier) {
			e.Cosigned = append(e.Cosigned, w.Name)
		} else {
			e.Missing = append(e.Missing, w.Name)
		}
	}
	return e
}

// Cosigned reports whether the signed note carries a signature that v
// verifies.
func Cosigned(signed []byte, v note.Verifier) bool {
	n, err := note.Open(signed, note.VerifierList(v))
	return err == nil && len(n.Sigs) > 0
}

// UnmetError reports a checkpoint whose cosignatures do not meet a policy.
type UnmetError struct {
	Missing  []string // witnesses of the policy that did not cosign
	Cosigned []string // witnesses that did, not enough of them
}

// ErrUnmet is what an *UnmetError matches with errors.Is.
var ErrUnmet = errors.New("the witness policy is not met")

// Error names the witnesses that are missing.
func (e *UnmetError) Error() string {
	msg := ErrUnmet.Error() + ": no cosignature from " + strings.Join(e.Missing, ", ")
	if len(e.Cosigned) > 0 {
		msg += " (cosigned by " + strings.Join(e.Cosigned, ", ") + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrUnmet) true.
func (e *UnmetError) Is(target error) bool { return target == ErrUnmet }
