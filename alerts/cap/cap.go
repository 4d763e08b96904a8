package cap

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/locale"
)

// Namespace is the XML namespace of OASIS CAP 1.2
// (https://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html).
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// Config says who publishes CAP alerts.
type Config struct {
	// Sender identifies the originator, e.g. "alerts@water.example.org";
	// no spaces, commas or '<' '&'.
	Sender string
	// SenderName is the human-readable name of the utility or agency.
	SenderName string
	// Status is Actual (default), Exercise, System, Test or Draft.
	Status string
	// Links point the info block's web element at the status page and
	// its resource at the proof of what the alert is about
	// (notice.Links.Proof). Without a Base there are neither.
	Links notice.Links
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Sender == "" || strings.ContainsAny(c.Sender, " ,<&\t\n") {
		return errors.New("cap sender must be non-empty without spaces, commas, '<' or '&'")
	}
	switch c.Status {
	case "", "Actual", "Exercise", "System", "Test", "Draft":
	default:
		return fmt.Errorf("cap status %q must be Actual, Exercise, System, Test or Draft", c.Status)
	}
	return nil
}

type capAlert struct {
	XMLName    xml.Name  `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier string    `xml:"identifier"`
	Sender     string    `xml:"sender"`
	Sent       string    `xml:"sent"`
	Status     string    `xml:"status"`
	MsgType    string    `xml:"msgType"`
	Source     string    `xml:"source,omitempty"`
	Scope      string    `xml:"scope"`
	Note       string    `xml:"note,omitempty"`
	References string    `xml:"references,omitempty"`
	Info       []capInfo `xml:"info"`
}

type capInfo struct {
	Language     string        `xml:"language"`
	Category     string        `xml:"category"`
	Event        string        `xml:"event"`
	ResponseType string        `xml:"responseType,omitempty"`
	Urgency      string        `xml:"urgency"`
	Severity     string        `xml:"severity"`
	Certainty    string        `xml:"certainty"`
	EventCode    []capValue    `xml:"eventCode"`
	Effective    string        `xml:"effective,omitempty"`
	Onset        string        `xml:"onset,omitempty"`
	SenderName   string        `xml:"senderName,omitempty"`
	Headline     string        `xml:"headline"`
	Description  string        `xml:"description"`
	Instruction  string        `xml:"instruction,omitempty"`
	Web          string        `xml:"web,omitempty"`
	Parameter    []capValue    `xml:"parameter"`
	Resource     []capResource `xml:"resource"`
	Area         capArea       `xml:"area"`
}

// capResource is a CAP resource: here the proof of what the alert is
// about (notice.Links.Proof), fetched from its uri.
type capResource struct {
	ResourceDesc string `xml:"resourceDesc"`
	MimeType     string `xml:"mimeType"`
	URI          string `xml:"uri"`
}

type capValue struct {
	ValueName string `xml:"valueName"`
	Value     string `xml:"value"`
}

type capArea struct {
	AreaDesc string     `xml:"areaDesc"`
	Polygon  []string   `xml:"polygon"`
	Geocode  []capValue `xml:"geocode"`
}

// capTime formats t as CAP requires: no "Z", an explicit offset.
func capTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05-07:00") }

// Marshal renders a as an OASIS CAP 1.2 alert. site, if known, supplies the
// area's name, outline and geocodes. Its headline and description are the
// notice residents are sent (notice.RenderIn), its instruction carries the
// health-effects language (notice.HealthEffectsIn), with one info block per
// language notices are written in (notice.Languages), English first; its resource is the proof
// bundle of the reading or lab sample it is about, or the period's report
// (notice.Links.Proof). Only public alert messages are CAP: suppression
// records are refused, and so is a home's own lab result (an individual
// compliance alert, tapproof.AlertClass.Private), which goes to that home
// only.
func Marshal(a tapproof.Alert, site *notice.Site, cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a.State() == tapproof.AlertSuppressed {
		return nil, fmt.Errorf("cap %s: a suppression record is not a public alert", a.ID)
	}
	if a.Class.Private() {
		return nil, fmt.Errorf("cap %s: a home's own lab result is not a public alert", a.ID)
	}
	if a.ID == "" || strings.ContainsAny(a.ID, " ,<&") {
		return nil, fmt.Errorf("cap: identifier %q not allowed", a.ID)
	}
	status := cfg.Status
	if status == "" {
		status = "Actual"
	}
	urgency, severity, certainty, response := "Expected", "Moderate", "Possible", "Avoid"
	switch {
	case a.Class == tapproof.SystemExceedance && a.Analyte == tapproof.Lead:
		// The Tier 1 public notice.
		urgency, severity, certainty = "Immediate", "Severe", "Observed"
	case a.Class == tapproof.SystemExceedance:
		// Copper's action level exceedance calls for treatment and
		// monitoring, not a Tier 1 notice.
		certainty, response = "Observed", "Monitor"
	}
	switch {
	case a.Type() == tapproof.CancelMsg && a.Class == tapproof.SystemUndetermined:
		// Decided again: the period's report, or an exceedance alert of
		// its own, says how.
		urgency, severity, certainty, response = "Past", "Minor", "Observed", "Monitor"
	case a.Type() == tapproof.CancelMsg:
		urgency, severity, certainty, response = "Past", "Minor", "Observed", "AllClear"
	}
	doc := capAlert{
		Identifier: a.ID,
		Sender:     cfg.Sender,
		Sent:       capTime(a.RaisedAt),
		Status:     status,
		MsgType:    string(a.Type()),
		Source:     "tapproof " + a.Rule,
		Scope:      "Public",
	}
	info := capInfo{
		Category:     "Health",
		ResponseType: response,
		Urgency:      urgency,
		Severity:     severity,
		Certainty:    certainty,
		EventCode:    []capValue{{ValueName: "tapproof:class", Value: string(a.Class)}},
		Onset:        capTime(a.SampledAt),
		SenderName:   cfg.SenderName,
		Web:          cfg.Links.Status(a.Utility, a.Site),
		Parameter: []capValue{
			{ValueName: "tapproof:value", Value: strconv.FormatFloat(a.Value, 'f', -1, 64) + " " + string(a.Unit)},
			{ValueName: "tapproof:level", Value: strconv.FormatFloat(a.Level, 'f', -1, 64) + " " + string(a.Unit)},
			{ValueName: "tapproof:rule", Value: a.Rule},
		},
		Area: capArea{AreaDesc: areaDesc(a, site)},
	}
	if cfg.Links.Base == "" {
		info.Web = ""
	} else {
		p := cfg.Links.Proof(a)
		info.Resource = []capResource{{ResourceDesc: p.Desc, MimeType: p.Type, URI: p.URL}}
	}
	if !a.Since.IsZero() {
		info.Onset = capTime(a.Since)
	}
	if len(a.References) > 0 {
		refs := make([]string, len(a.References))
		for i, r := range a.References {
			refs[i] = cfg.Sender + "," + r.ID + "," + capTime(r.RaisedAt)
		}
		doc.References = strings.Join(refs, " ")
	}
	if site != nil {
		if len(site.Polygon) >= 4 && site.Polygon[0] == site.Polygon[len(site.Polygon)-1] {
			pts := make([]string, len(site.Polygon))
			for i, p := range site.Polygon {
				pts[i] = strconv.FormatFloat(p[0], 'f', -1, 64) + "," + strconv.FormatFloat(p[1], 'f', -1, 64)
			}
			info.Area.Polygon = []string{strings.Join(pts, " ")}
		}
		for _, g := range site.Geocodes {
			info.Area.Geocode = append(info.Area.Geocode, capValue{ValueName: g.Name, Value: g.Value})
		}
	}
	// One info block per language notices are written in, English first:
	// the same notice residents are sent in that language.
	for _, lang := range notice.Languages() {
		text, err := notice.RenderIn(lang, a, site, cfg.Links)
		if err != nil {
			return nil, err
		}
		if text.Language() != lang {
			continue // no notice of its own in lang: English says it
		}
		l := localizer(lang)
		in := info
		in.Language = lang + "-US"
		in.Event = capitalize(l.T("cap_event", "Analyte", text.AnalyteName(a.Analyte)))
		in.Headline = truncate(text.Subject, 160)
		in.Description = text.Body
		in.Instruction = instruction(l, lang, a)
		doc.Info = append(doc.Info, in)
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cap %s: %w", a.ID, err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// instruction is what residents should do, by analyte (lead's advice is
// not copper's) and for an undetermined period; for lead and copper it
// carries the mandatory health-effects language.
func instruction(l *locale.Localizer, lang string, a tapproof.Alert) string {
	var b strings.Builder
	switch {
	case a.Type() == tapproof.CancelMsg && a.Class == tapproof.SystemUndetermined:
		b.WriteString(l.T("cap_instruction_resolved"))
	case a.Type() == tapproof.CancelMsg:
		b.WriteString(l.T("cap_instruction_clear"))
	case a.Class == tapproof.SystemUndetermined:
		b.WriteString(l.T("cap_instruction_undetermined"))
	case a.Analyte == tapproof.Copper:
		b.WriteString(l.T("cap_instruction_copper"))
	default:
		b.WriteString(l.T("cap_instruction"))
	}
	if h := notice.HealthEffectsIn(lang, a.Analyte); h != "" {
		b.WriteString(" ")
		b.WriteString(h)
	}
	return b.String()
}

// localizer returns the page messages of notice language lang.
func localizer(lang string) *locale.Localizer {
	t, _ := locale.Parse(lang)
	return locale.For(t)
}

func capitalize(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

func areaDesc(a tapproof.Alert, site *notice.Site) string {
	switch {
	case site != nil && site.AreaName != "" && site.Name != "":
		return site.Name + ", " + site.AreaName
	case site != nil && site.Name != "":
		return site.Name
	case a.Site != "":
		return "Site " + a.Site + " of the " + a.Utility + " water system"
	}
	return "The " + a.Utility + " water system"
}

func truncate(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
