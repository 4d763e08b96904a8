package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/transparency-dev/formats/log"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/anchor"
)

// Source serves a log's leaves; Run trusts none of them that does not hash
// to the checkpoint's root. httpapi.Client.Log implements it.
type Source = anchor.LeafSource

// Store is the InfluxDB side of an audit. *Influx implements it.
type Store interface {
	// Points hands fn every point of measurement reading with tag utility,
	// in any order, and returns fn's first error. fn must not keep p, whose
	// memory is reused; its Series is not modified once handed out.
	Points(ctx context.Context, utility string, fn func(p *Point) error) error
}

// Series is the tag set of a series of points, shared by its points.
type Series struct {
	// Tags maps each tag key to its value; a key with an empty value is
	// absent from the point (InfluxDB lists every key of the measurement).
	Tags map[string]string
}

// Point is one point of measurement reading as InfluxDB holds it.
type Point struct {
	Series *Series
	// Time is the timestamp, in nanoseconds since the Unix epoch.
	Time int64
	// The fields of the schema; Has says which the point has.
	Value, DetectionLimit float64
	Seq, LeafIndex        int64
	Has                   Fields
	// Other lists, as "name=value", the point's fields outside the schema
	// and those of the schema with a value of another type.
	Other []string
}

// Fields is a set of the schema's fields.
type Fields uint8

// The fields of the schema (influx.FieldValue and the others).
const (
	HasValue Fields = 1 << iota
	HasSeq
	HasLeafIndex
	HasDetectionLimit
)

// Kind is the kind of a finding.
type Kind string

// Kinds of finding.
const (
	// Missing: the point of a leaf is not in InfluxDB.
	Missing Kind = "missing"
	// Changed: the point of a leaf is in InfluxDB, but with another value,
	// time, tag, sequence number, leaf index or detection limit, or with
	// fields tapproof does not write.
	Changed Kind = "changed"
	// WithoutLeaf: a point that no leaf accounts for.
	WithoutLeaf Kind = "without_leaf"
)

// Kinds lists the kinds of finding, in the order reports count them.
var Kinds = []Kind{Missing, Changed, WithoutLeaf}

// Finding is one discrepancy between InfluxDB and the log. The point it
// describes is the leaf's for Missing and Changed (what differs is in
// Diffs), InfluxDB's for WithoutLeaf.
type Finding struct {
	Kind   Kind   `json:"kind"`
	Device string `json:"device"`
	Seq    uint64 `json:"seq"`
	// Index is the leaf's index; for WithoutLeaf, the leaf index the point
	// claims, if it has one.
	Index   *uint64   `json:"leaf_index,omitempty"`
	Site    string    `json:"site"`
	Analyte string    `json:"analyte"`
	Method  string    `json:"method"`
	Value   float64   `json:"value"`
	Unit    string    `json:"unit"`
	Time    time.Time `json:"time"`
	Diffs   []Diff    `json:"diffs,omitempty"`
	// Note says why a point is without a leaf.
	Note string `json:"note,omitempty"`
}

// Diff is one difference between a leaf's point and InfluxDB's: a tag
// ("tag site"), a field ("field value") or the time, as the leaf wants it
// and as InfluxDB has it, None if absent.
type Diff struct {
	What string `json:"what"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

// None is what a Diff says of a tag or field that is absent.
const None = "(none)"

// Report is the outcome of an audit of one utility at one checkpoint.
type Report struct {
	Utility string `json:"utility"`
	// Origin, Size and Root identify the checkpoint audited at.
	Origin string `json:"origin"`
	Size   uint64 `json:"checkpoint_size"`
	Root   []byte `json:"checkpoint_root"`
	// Checkpoint is the signed checkpoint, if the caller sets it.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Leaves counts the reading and lab sample leaves the checkpoint
	// covers that call for a point.
	Leaves int `json:"leaves"`
	// Unwritten counts those tapproof writes no point for: they do not
	// decode, or do not fit the schema (the InfluxDB writer sets them
	// aside). Not in Leaves.
	Unwritten int `json:"unwritten_leaves"`
	// Points counts the points InfluxDB holds for the utility, Newer those
	// of them newer than the checkpoint; NewestIndex is the largest leaf
	// index a newer point claims.
	Points      int       `json:"points"`
	Newer       int       `json:"newer_than_checkpoint"`
	NewestIndex *uint64   `json:"newest_index,omitempty"`
	Findings    []Finding `json:"findings"`
}

// Count returns the number of findings of kind k.
func (r *Report) Count(k Kind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// Clean reports whether the audit found nothing.
func (r *Report) Clean() bool { return len(r.Findings) == 0 }

// Run audits utility's points in store against its log at checkpoint cp:
// it reads every leaf cp covers from src, checked against cp's root, and
// then every point store holds for utility. cp should come from
// anchor.OpenCheckpoint, which checked its signature. An error means that
// no audit took place (a source whose leaves do not hash to cp's root is
// one); the findings are in the report.
func Run(ctx context.Context, src Source, store Store, utility string, cp *log.Checkpoint) (*Report, error) {
	if !tapproof.ValidID(utility) {
		return nil, fmt.Errorf("audit: invalid utility id %q", utility)
	}
	e, err := readExpected(ctx, src, cp)
	if err != nil {
		return nil, fmt.Errorf("audit %s: reading the log back: %w", utility, err)
	}
	m := newMatcher(e)
	if err := store.Points(ctx, utility, m.point); err != nil {
		return nil, fmt.Errorf("audit %s: reading InfluxDB: %w", utility, err)
	}
	rep := &Report{
		Utility: utility, Origin: cp.Origin, Size: cp.Size, Root: cp.Hash,
		Leaves: len(e.wants), Unwritten: e.unwritten,
		Points: m.points, Newer: m.newer, Findings: m.findings(),
	}
	if m.newer > 0 {
		rep.NewestIndex = &m.newestIndex
	}
	return rep, nil
}
