package notice

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/tapproof/tapproof"
)

// Links are the public pages a notice points to.
type Links struct {
	// Base is the public site's base URL, e.g. https://water.example.org/.
	Base string
}

// Status returns the status page of utility's site, or of the utility.
func (l Links) Status(utility, site string) string {
	p := "sites/" + url.PathEscape(utility)
	if site != "" {
		p += "/" + url.PathEscape(site)
	}
	return l.join(p)
}

// CAP returns the CAP document of alert id.
func (l Links) CAP(id string) string { return l.join("v1/alerts/" + url.PathEscape(id) + "/cap.xml") }

// Confirm returns the confirmation link of token.
func (l Links) Confirm(token string) string { return l.join("confirm?token=" + url.QueryEscape(token)) }

// Unsubscribe returns the unsubscribe link of token.
func (l Links) Unsubscribe(token string) string {
	return l.join("unsubscribe?token=" + url.QueryEscape(token))
}

// Descriptions of the evidence behind an alert, Proof.Desc: what it is and
// how anyone checks it without trusting the server that serves it.
const (
	ProofBundleDesc = "proof bundle (verify with tapproof verify)"
	ReportDesc      = "compliance report (recompute with tapproof compliance)"
	CheckpointDesc  = "signed checkpoint of the log (check with tapproof compliance --log)"
)

// Proof is where the evidence an alert is about can be fetched: the proof
// bundle of the reading or lab sample that raised it, or, for a system
// action level exceedance, the report of the monitoring period. Every
// channel (notices, CAP, the Atom feed, the pages) links the same one.
type Proof struct {
	URL  string    // absolute
	Type string    // its media type
	Kind ProofKind // what it is, for a page to name it in its language
	Name string    // what it is in English: "proof bundle", "compliance report" or "checkpoint"
	Desc string    // Name and how to check it: ProofBundleDesc, ReportDesc or CheckpointDesc
}

// ProofKind is what a Proof is.
type ProofKind string

// Proof kinds.
const (
	ProofBundle     ProofKind = "bundle"
	ProofReport     ProofKind = "report"
	ProofCheckpoint ProofKind = "checkpoint"
)

// Proof returns the evidence of alert a. A screening alert's is the bundle
// of the sensor reading it is about, an individual compliance alert's the
// bundle of the lab sample's leaf (its Seq is the leaf index), a system
// exceedance's or system undetermined alert's the compliance report of the
// period its ID (or, for a cancellation, the alert it references) names
// (tapproof.Alert.ExceedancePeriod), or the log's latest checkpoint if it
// names none.
func (l Links) Proof(a tapproof.Alert) Proof {
	switch a.Class {
	case tapproof.Screening:
		return Proof{URL: l.ReadingBundle(a.Device, a.Seq), Type: "application/json", Kind: ProofBundle, Name: "proof bundle", Desc: ProofBundleDesc}
	case tapproof.IndividualCompliance:
		return Proof{URL: l.LeafBundle(a.Utility, a.Seq), Type: "application/json", Kind: ProofBundle, Name: "proof bundle", Desc: ProofBundleDesc}
	}
	if a.Class == tapproof.SystemUndetermined && a.Type() == tapproof.CancelMsg && len(a.References) > 0 {
		// A cancellation names the period through the alert it ends.
		a.ID = a.References[0].ID
	}
	if p, ok := a.ExceedancePeriod(); ok {
		u := l.join("v1/compliance/" + url.PathEscape(a.Utility) + "/" + url.PathEscape(p.ID))
		if a.Analyte != tapproof.Lead {
			u += "?analyte=" + url.QueryEscape(string(a.Analyte))
		}
		return Proof{URL: u, Type: "application/json", Kind: ProofReport, Name: "compliance report", Desc: ReportDesc}
	}
	return Proof{URL: l.join("v1/logs/" + url.PathEscape(a.Utility) + "/checkpoint"), Type: "text/plain", Kind: ProofCheckpoint, Name: "checkpoint", Desc: CheckpointDesc}
}

// ReadingProof returns the proof bundle of reading r: a lab sample's (method
// lab, whose Seq is its leaf index, tapproof.LabSample.Reading) is its
// leaf's, a sensor reading's is by device and sequence number.
func (l Links) ReadingProof(r tapproof.Reading) string {
	if r.Method == tapproof.Lab {
		return l.LeafBundle(r.Utility, r.Seq)
	}
	return l.ReadingBundle(r.Device, r.Seq)
}

// ReadingBundle returns the proof bundle of reading seq of device.
func (l Links) ReadingBundle(device string, seq uint64) string {
	return l.join("v1/readings/" + url.PathEscape(device) + "/" + strconv.FormatUint(seq, 10) + "/bundle")
}

// LeafBundle returns the proof bundle of the entry at index of utility's
// log, whatever it holds.
func (l Links) LeafBundle(utility string, index uint64) string {
	return l.join("v1/logs/" + url.PathEscape(utility) + "/leaves/" + strconv.FormatUint(index, 10) + "/bundle")
}

func (l Links) join(p string) string { return strings.TrimSuffix(l.Base, "/") + "/" + p }

// Join returns the absolute URL of path p (without a leading slash) under Base.
func (l Links) Join(p string) string { return l.join(strings.TrimPrefix(p, "/")) }
