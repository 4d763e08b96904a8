package simulate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
)

// Lab is a simulated certified laboratory: it signs lead results of
// compliance samples with its own key, which the state gives tapproof
// (serve --lab-key ID=PUBLIC).
type Lab struct {
	ID  string             `json:"id"`
	Key ed25519.PrivateKey `json:"private_key"`
}

// LoadOrCreateLab reads the lab kept in path, or creates lab id with a
// fresh key and saves it there (mode 0600: it holds the private key).
func LoadOrCreateLab(path, id string) (*Lab, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var l Lab
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("lab %s: %w", path, err)
		}
		if !tapproof.ValidID(l.ID) || len(l.Key) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("lab %s: no valid id and private key", path)
		}
		return &l, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if !tapproof.ValidID(id) {
		return nil, fmt.Errorf("lab id %q is not a valid id", id)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	l := &Lab{ID: id, Key: key}
	if err := saveSecret(path, l); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return l, nil
}

// PublicKey returns the lab's public key in base64, as serve's --lab-key
// takes it.
func (l *Lab) PublicKey() string {
	return base64.StdEncoding.EncodeToString(l.Key.Public().(ed25519.PublicKey))
}

// ExceedingRound is a monitoring round of 20 first-liter lead results, in
// µg/L, whose 90th percentile (rank 18) is 17: above the 15 ppb action
// level. Three results are above it on their own.
var ExceedingRound = []float64{2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8, 8, 9, 10, 11, 12, 14, 17, 19, 26}

// Round returns the lab's results for utility's monitoring period, one per
// value, at sample sites tap-01, tap-02, ...: collected a day apart from a
// month into the period, each analysed the next day. Their sample ids are
// fixed by the period and position, so publishing a round again cannot add
// samples. The period should be over, or far enough along.
func (l *Lab) Round(utility string, period tapproof.Period, ppb []float64) []tapproof.LabSample {
	out := make([]tapproof.LabSample, len(ppb))
	for i, v := range ppb {
		at := period.Start.AddDate(0, 0, 30+i).Add(7 * time.Hour)
		out[i] = tapproof.LabSample{
			Lab: l.ID, SampleID: fmt.Sprintf("%s-%03d", period.ID, i+1), Utility: utility, Site: fmt.Sprintf("tap-%02d", i+1),
			Tier: 1, Liter: tapproof.FirstLiter, Analyte: tapproof.Lead, Value: v, Unit: tapproof.MicrogramsPerLiter,
			DetectionLimit: 0.5, CollectedAt: at, AnalyzedAt: at.Add(20 * time.Hour), Period: period.ID, Method: "EPA 200.8",
		}
	}
	return out
}

// PreviousHalf returns the half-year monitoring period before the one t is
// in: 2026H1 for a t in 2026H2.
func PreviousHalf(t time.Time) tapproof.Period {
	t = t.UTC()
	id := fmt.Sprintf("%dH1", t.Year())
	if t.Month() <= time.June {
		id = fmt.Sprintf("%dH2", t.Year()-1)
	}
	p, err := tapproof.ParsePeriod(id)
	if err != nil {
		panic(err) // a well-formed id
	}
	return p
}

// Publish signs s with the lab's key and publishes it as the lab would.
func (l *Lab) Publish(ctx context.Context, js jetstream.JetStream, s tapproof.LabSample) error {
	p, err := json.Marshal(s)
	if err != nil {
		return err
	}
	raw, err := signed.Sign(ctx, l.Key, tapproof.LabSamplePayloadType, p)
	if err != nil {
		return err
	}
	subject := fmt.Sprintf("tapproof.labsamples.%s.%s", s.Utility, l.ID)
	if _, err := js.Publish(ctx, subject, raw, jetstream.WithMsgID("lab-"+s.Key())); err != nil {
		return fmt.Errorf("publish lab sample %s: %w", s.Key(), err)
	}
	return nil
}
