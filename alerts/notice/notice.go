package notice

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/tapproof/tapproof"
)

// HealthEffectsLead is the mandatory health-effects language of every lead
// notice (40 CFR 141.85(a)(1)(ii), as revised by the LCRR).
const HealthEffectsLead = "Exposure to lead in drinking water can cause serious health effects in all age groups. " +
	"Infants and children can have decreases in IQ and attention span. Lead exposure can lead to new learning and " +
	"behavior problems or exacerbate existing learning and behavior problems. The children of women who are exposed " +
	"to lead before or during pregnancy can have increased risk of these adverse health effects. Adults can have " +
	"increased risks of heart disease, high blood pressure, kidney or nervous system problems."

// HealthEffectsCopper is the health-effects language of copper notices
// (40 CFR 141 subpart O, appendix A).
const HealthEffectsCopper = "Copper is an essential nutrient, but some people who drink water containing copper in " +
	"excess of the action level over a relatively short amount of time could experience gastrointestinal distress. " +
	"Some people who drink water containing copper in excess of the action level over many years could suffer liver " +
	"or kidney damage. People with Wilson's Disease should consult their personal doctor."

// HealthEffects returns the mandatory health-effects language for a, or ""
// if there is none.
func HealthEffects(a tapproof.Analyte) string {
	switch a {
	case tapproof.Lead:
		return HealthEffectsLead
	case tapproof.Copper:
		return HealthEffectsCopper
	}
	return ""
}

// Notice template ids. A template's id and version are recorded with every
// notice rendered from it; a changed text gets a new version, never the
// same one.
const (
	TemplateScreeningAlert   = "screening-alert"
	TemplateScreeningClear   = "screening-all-clear"
	TemplateIndividualResult = "individual-result"
	TemplateTier1            = "tier1-lead-ale"
	TemplateConfirm          = "subscription-confirm"
)

//go:embed notices/*.tmpl
var noticeFS embed.FS

// Template is one version of a notice text.
type Template struct {
	ID      string
	Version int
	tmpl    *template.Template
}

// Name is "<id>@v<version>".
func (t Template) Name() string { return fmt.Sprintf("%s@v%d", t.ID, t.Version) }

// templates are the current version of each template. Earlier versions
// stay in notices/, so that the hash a notice record holds can still be
// checked against the text of the version it names.
var templates = func() map[string]Template {
	funcs := template.FuncMap{"upper": func(v any) string { return strings.ToUpper(fmt.Sprint(v)) }}
	out := map[string]Template{}
	for _, t := range []Template{
		{ID: TemplateScreeningAlert, Version: 2},
		{ID: TemplateScreeningClear, Version: 2},
		{ID: TemplateIndividualResult, Version: 2},
		{ID: TemplateTier1, Version: 2},
		{ID: TemplateConfirm, Version: 1},
	} {
		file := fmt.Sprintf("notices/%s.v%d.tmpl", t.ID, t.Version)
		t.tmpl = template.Must(template.New(file).Funcs(funcs).Option("missingkey=error").ParseFS(noticeFS, file))
		out[t.ID] = t
	}
	return out
}()

// Lookup returns the current version of the notice template id.
func Lookup(id string) (Template, bool) {
	t, ok := templates[id]
	return t, ok
}

// TemplateFor returns the template of the notice for a.
func TemplateFor(a tapproof.Alert) Template {
	switch {
	case a.Class == tapproof.SystemExceedance:
		return templates[TemplateTier1]
	case a.Class == tapproof.IndividualCompliance:
		return templates[TemplateIndividualResult]
	case a.Type() == tapproof.CancelMsg:
		return templates[TemplateScreeningClear]
	}
	return templates[TemplateScreeningAlert]
}

// Notice is a rendered notice: the exact text every recipient gets, before
// the per-recipient footer (the unsubscribe link), which is not part of it.
type Notice struct {
	Template Template
	Subject  string
	Body     string
}

// Text is the notice as hashed and recorded: the subject line, a blank line
// and the body.
func (n Notice) Text() string { return n.Subject + "\n\n" + n.Body }

// SHA256 is the hex SHA-256 of Text.
func (n Notice) SHA256() string {
	sum := sha256.Sum256([]byte(n.Text()))
	return hex.EncodeToString(sum[:])
}

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
	URL  string // absolute
	Type string // its media type
	Name string // what it is: "proof bundle", "compliance report" or "checkpoint"
	Desc string // Name and how to check it: ProofBundleDesc, ReportDesc or CheckpointDesc
}

// Proof returns the evidence of alert a. A screening alert's is the bundle
// of the sensor reading it is about, an individual compliance alert's the
// bundle of the lab sample's leaf (its Seq is the leaf index), a system
// exceedance's the compliance report of the period its ID names
// (tapproof.Alert.ExceedancePeriod), or the log's latest checkpoint if it
// names none.
func (l Links) Proof(a tapproof.Alert) Proof {
	switch a.Class {
	case tapproof.Screening:
		return Proof{URL: l.ReadingBundle(a.Device, a.Seq), Type: "application/json", Name: "proof bundle", Desc: ProofBundleDesc}
	case tapproof.IndividualCompliance:
		return Proof{URL: l.LeafBundle(a.Utility, a.Seq), Type: "application/json", Name: "proof bundle", Desc: ProofBundleDesc}
	}
	if p, ok := a.ExceedancePeriod(); ok {
		u := l.join("v1/compliance/" + url.PathEscape(a.Utility) + "/" + url.PathEscape(p.ID))
		if a.Analyte != tapproof.Lead {
			u += "?analyte=" + url.QueryEscape(string(a.Analyte))
		}
		return Proof{URL: u, Type: "application/json", Name: "compliance report", Desc: ReportDesc}
	}
	return Proof{URL: l.join("v1/logs/" + url.PathEscape(a.Utility) + "/checkpoint"), Type: "text/plain", Name: "checkpoint", Desc: CheckpointDesc}
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

// noticeData is what notice templates see.
type noticeData struct {
	AlertID, Utility, Place, Analyte, Rule string
	Value, Level, Recovery                 string
	SampledAt, Since                       string
	Update                                 bool
	References                             []tapproof.AlertRef
	HealthEffects                          string
	StatusURL, CAPURL, ConfirmURL          string
	ProofURL                               string
	ProofIsReport                          bool // ProofURL is a compliance report
}

// Render renders the notice for alert a about site (nil if unknown).
func Render(a tapproof.Alert, site *Site, links Links) (Notice, error) {
	t := TemplateFor(a)
	d := noticeData{
		AlertID: a.ID, Utility: a.Utility, Place: placeName(a.Utility, a.Site, site), Analyte: string(a.Analyte),
		Rule: a.Rule, Value: quantity(a.Value, a.Unit), Level: quantity(a.Level, a.Unit), Recovery: quantity(a.Recovery, a.Unit),
		SampledAt: stamp(a.SampledAt), Update: a.Type() == tapproof.UpdateMsg, References: a.References,
		HealthEffects: HealthEffects(a.Analyte), StatusURL: links.Status(a.Utility, a.Site), CAPURL: links.CAP(a.ID),
	}
	proof := links.Proof(a)
	d.ProofURL, d.ProofIsReport = proof.URL, proof.Desc == ReportDesc
	if !a.Since.IsZero() && !a.Since.Equal(a.SampledAt) {
		d.Since = stamp(a.Since)
	}
	return render(t, d)
}

// RenderConfirmation renders the request to confirm a subscription to
// siteID or, if that is empty, to service area area of utility; site, if
// known, is that site or a site in that area. confirmURL is the link that
// confirms (Links.Confirm).
func RenderConfirmation(utility, siteID, area string, site *Site, confirmURL string) (Notice, error) {
	place := placeName(utility, siteID, site)
	if area != "" {
		place = "the " + area + " service area"
		if site != nil && site.AreaName != "" {
			place = site.AreaName
		}
	}
	return render(templates[TemplateConfirm], noticeData{
		Utility: utility, Place: place, ConfirmURL: confirmURL,
	})
}

func render(t Template, d noticeData) (Notice, error) {
	var subj, body strings.Builder
	if err := t.tmpl.ExecuteTemplate(&subj, "subject", d); err != nil {
		return Notice{}, fmt.Errorf("notice %s: %w", t.Name(), err)
	}
	if err := t.tmpl.ExecuteTemplate(&body, "body", d); err != nil {
		return Notice{}, fmt.Errorf("notice %s: %w", t.Name(), err)
	}
	return Notice{Template: t, Subject: strings.Join(strings.Fields(subj.String()), " "), Body: strings.TrimLeft(body.String(), "\n")}, nil
}

func placeName(utility, siteID string, site *Site) string {
	switch {
	case site != nil && site.Name != "":
		return site.Name
	case siteID != "":
		return siteID + " (" + utility + ")"
	}
	return "the " + utility + " water system"
}

func quantity(v float64, u tapproof.Unit) string {
	unit := string(u)
	switch u {
	case tapproof.MicrogramsPerLiter:
		unit = "µg/L (ppb)"
	case tapproof.NTU:
		unit = "NTU"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + unit
}

func stamp(t time.Time) string { return t.UTC().Format("2 January 2006 15:04 UTC") }
