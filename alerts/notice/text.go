package notice

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/tapproof/tapproof"
)

// DefaultLanguage is the language every notice exists in, and the one a
// notice falls back to when its language lacks a template.
const DefaultLanguage = "en"

// Notice template ids. A template's id, language and version are recorded
// with every notice rendered from it; a changed text gets a new version,
// never the same one.
const (
	TemplateScreeningAlert   = "screening-alert"
	TemplateScreeningClear   = "screening-all-clear"
	TemplateIndividualResult = "individual-result"
	TemplateTier1            = "tier1-lead-ale"
	TemplateCopperALE        = "copper-ale"
	TemplateUndetermined     = "period-undetermined"
	TemplateConfirm          = "subscription-confirm"
)

// The files of one language, in notices/<language>/ (a BCP 47 tag):
//
//	<id>.v<N>.tmpl                  version N of notice template id, with a
//	                                "subject" and a "body" template
//	health-effects-<analyte>.v<N>.txt  version N of the mandatory
//	                                health-effects language, verbatim
//	phrases.tmpl                    how the language names a place and a
//	                                time ("place-system", "place-site",
//	                                "place-area", "date") and an analyte
//	                                ("analyte"), and the footer of a
//	                                notice ("footer")
//
// The newest version of each file is the current one. Earlier versions stay,
// so that the hash a notice record holds can still be checked against the
// text of the version it names. phrases.tmpl is part of every template of
// its language: a change to it is a change to each, and gives each a new
// version.
//
//go:embed notices
var noticeFS embed.FS

// Template is one version of a notice text in one language.
type Template struct {
	ID       string
	Version  int
	Language string
	tmpl     *template.Template
}

// Name is "<id>@v<version>" in DefaultLanguage and
// "<language>/<id>@v<version>" in others.
func (t Template) Name() string {
	if t.Language == DefaultLanguage {
		return fmt.Sprintf("%s@v%d", t.ID, t.Version)
	}
	return fmt.Sprintf("%s/%s@v%d", t.Language, t.ID, t.Version)
}

// language is what one language directory holds.
type language struct {
	templates     map[string]Template         // current version by id
	healthEffects map[tapproof.Analyte]string // current version by analyte
	phrases       *template.Template          // phrases.tmpl
}

var languages = func() map[string]*language {
	dirs, err := fs.ReadDir(noticeFS, "notices")
	if err != nil {
		panic(err)
	}
	out := map[string]*language{}
	for _, d := range dirs {
		if d.IsDir() {
			out[d.Name()] = loadLanguage(d.Name())
		}
	}
	if out[DefaultLanguage] == nil {
		panic("notice: no notices/" + DefaultLanguage)
	}
	return out
}()

var funcs = template.FuncMap{
	"upper": func(v any) string { return strings.ToUpper(fmt.Sprint(v)) },
	// word returns the nth (from 1) space-separated word of list: month
	// names in phrases.tmpl.
	"word": func(n int, list string) string {
		w := strings.Fields(list)
		if n < 1 || n > len(w) {
			return strconv.Itoa(n)
		}
		return w[n-1]
	},
}

func loadLanguage(lang string) *language {
	dir := path.Join("notices", lang)
	l := &language{templates: map[string]Template{}, healthEffects: map[tapproof.Analyte]string{}}
	phrases, err := fs.ReadFile(noticeFS, path.Join(dir, "phrases.tmpl"))
	if err != nil {
		panic(fmt.Sprintf("notice: %s: %v", lang, err))
	}
	l.phrases = template.Must(template.New("phrases.tmpl").Funcs(funcs).Option("missingkey=error").Parse(string(phrases)))
	files, err := fs.ReadDir(noticeFS, dir)
	if err != nil {
		panic(err)
	}
	effects := map[tapproof.Analyte]int{}
	for _, f := range files {
		name := f.Name()
		if analyte, v, ok := versioned(name, "health-effects-", ".txt"); ok {
			if v > effects[tapproof.Analyte(analyte)] {
				text, err := fs.ReadFile(noticeFS, path.Join(dir, name))
				if err != nil {
					panic(err)
				}
				effects[tapproof.Analyte(analyte)] = v
				l.healthEffects[tapproof.Analyte(analyte)] = strings.TrimSpace(string(text))
			}
			continue
		}
		id, v, ok := versioned(name, "", ".tmpl")
		if !ok || v <= l.templates[id].Version {
			continue
		}
		file := path.Join(dir, name)
		t := template.Must(template.Must(l.phrases.Clone()).New(name).Parse(mustRead(file)))
		l.templates[id] = Template{ID: id, Version: v, Language: lang, tmpl: t}
	}
	return l
}

func mustRead(file string) string {
	b, err := fs.ReadFile(noticeFS, file)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// versioned parses "<prefix><id>.v<N><suffix>".
func versioned(name, prefix, suffix string) (string, int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return "", 0, false
	}
	rest, ok = strings.CutSuffix(rest, suffix)
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndex(rest, ".v")
	if i <= 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(rest[i+2:])
	if err != nil || v < 1 {
		return "", 0, false
	}
	return rest[:i], v, true
}

// Languages returns the languages notices are written in, DefaultLanguage
// first.
func Languages() []string {
	var out []string
	for l := range languages {
		if l != DefaultLanguage {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return append([]string{DefaultLanguage}, out...)
}

// HasLanguage reports whether notices are written in lang.
func HasLanguage(lang string) bool { return languages[lang] != nil }

// HealthEffectsLead is the mandatory health-effects language of every lead
// notice in English (40 CFR 141.85(a)(1)(ii), as revised by the LCRR).
var HealthEffectsLead = HealthEffectsIn(DefaultLanguage, tapproof.Lead)

// HealthEffects returns the mandatory health-effects language for a in
// English, or "" if there is none.
func HealthEffects(a tapproof.Analyte) string { return HealthEffectsIn(DefaultLanguage, a) }

// HealthEffectsIn returns the health-effects language for a in lang, or in
// DefaultLanguage if lang has none, or "" if there is none.
func HealthEffectsIn(lang string, a tapproof.Analyte) string {
	if l := languages[lang]; l != nil {
		if h, ok := l.healthEffects[a]; ok {
			return h
		}
	}
	return languages[DefaultLanguage].healthEffects[a]
}

// Lookup returns the current version of notice template id in English.
func Lookup(id string) (Template, bool) { return LookupIn(DefaultLanguage, id) }

// LookupIn returns the current version of notice template id in lang, or
// in DefaultLanguage if lang has none.
func LookupIn(lang, id string) (Template, bool) {
	if l := languages[lang]; l != nil {
		if t, ok := l.templates[id]; ok {
			return t, true
		}
	}
	t, ok := languages[DefaultLanguage].templates[id]
	return t, ok
}

// TemplateFor returns the English template of the notice for a.
func TemplateFor(a tapproof.Alert) Template { return TemplateIn(DefaultLanguage, a) }

// TemplateIn returns the template of the notice for a in lang: a lead
// system exceedance's is the Tier 1 notice, a copper one's its own, a
// system undetermined alert's (and its Cancel's) the undetermined period's.
func TemplateIn(lang string, a tapproof.Alert) Template {
	id := TemplateScreeningAlert
	switch {
	case a.Class == tapproof.SystemExceedance && a.Analyte == tapproof.Lead:
		id = TemplateTier1
	case a.Class == tapproof.SystemExceedance:
		// Copper's action level exceedance is no Tier 1 notice and has
		// no lead advice.
		id = TemplateCopperALE
	case a.Class == tapproof.SystemUndetermined:
		id = TemplateUndetermined
	case a.Class == tapproof.IndividualCompliance:
		id = TemplateIndividualResult
	case a.Type() == tapproof.CancelMsg:
		id = TemplateScreeningClear
	}
	t, _ := LookupIn(lang, id)
	return t
}

// Notice is a rendered notice: the exact text every recipient gets, before
// the per-recipient footer (the unsubscribe link), which is not part of it.
type Notice struct {
	Template Template
	Subject  string
	Body     string
}

// Language is the language the notice is written in.
func (n Notice) Language() string { return n.Template.Language }

// Text is the notice as hashed and recorded: the subject line, a blank line
// and the body.
func (n Notice) Text() string { return n.Subject + "\n\n" + n.Body }

// SHA256 is the hex SHA-256 of Text.
func (n Notice) SHA256() string {
	sum := sha256.Sum256([]byte(n.Text()))
	return hex.EncodeToString(sum[:])
}

// noticeData is what notice templates see.
type noticeData struct {
	AlertID, Utility, Place, Analyte, Rule string
	Value, Level, Recovery, Upper          string
	SampledAt, Since                       string
	Update, Cancel                         bool
	References                             []tapproof.AlertRef
	HealthEffects                          string
	StatusURL, CAPURL, ConfirmURL          string
	ProofURL                               string
	ProofIsReport                          bool // ProofURL is a compliance report
}

// Render renders the English notice for alert a about site (nil if
// unknown).
func Render(a tapproof.Alert, site *Site, links Links) (Notice, error) {
	return RenderIn(DefaultLanguage, a, site, links)
}

// RenderIn renders the notice for alert a about site (nil if unknown) in
// lang, or in DefaultLanguage where lang has no template for it; the
// Notice's Template says which.
func RenderIn(lang string, a tapproof.Alert, site *Site, links Links) (Notice, error) {
	t := TemplateIn(lang, a)
	d := noticeData{
		AlertID: a.ID, Utility: a.Utility, Analyte: string(a.Analyte),
		Rule: a.Rule, Value: Quantity(a.Value, a.Unit), Level: Quantity(a.Level, a.Unit), Recovery: Quantity(a.Recovery, a.Unit),
		Upper:  Quantity(a.Upper, a.Unit),
		Update: a.Type() == tapproof.UpdateMsg, Cancel: a.Type() == tapproof.CancelMsg, References: a.References,
		HealthEffects: HealthEffectsIn(t.Language, a.Analyte), StatusURL: links.Status(a.Utility, a.Site), CAPURL: links.CAP(a.ID),
	}
	var err error
	if d.Analyte, err = phrase(t, "analyte", string(a.Analyte)); err != nil {
		return Notice{}, err
	}
	if d.Place, err = placeName(t, a.Utility, a.Site, "", site); err != nil {
		return Notice{}, err
	}
	if d.SampledAt, err = stamp(t, a.SampledAt); err != nil {
		return Notice{}, err
	}
	proof := links.Proof(a)
	d.ProofURL, d.ProofIsReport = proof.URL, proof.Desc == ReportDesc
	if !a.Since.IsZero() && !a.Since.Equal(a.SampledAt) {
		if d.Since, err = stamp(t, a.Since); err != nil {
			return Notice{}, err
		}
	}
	return render(t, d)
}

// RenderConfirmation renders, in English, the request to confirm a
// subscription (RenderConfirmationIn).
func RenderConfirmation(utility, siteID, area string, site *Site, confirmURL string) (Notice, error) {
	return RenderConfirmationIn(DefaultLanguage, utility, siteID, area, site, confirmURL)
}

// RenderConfirmationIn renders in lang the request to confirm a
// subscription to siteID or, if that is empty, to service area area of
// utility; site, if known, is that site or a site in that area. confirmURL
// is the link that confirms (Links.Confirm).
func RenderConfirmationIn(lang, utility, siteID, area string, site *Site, confirmURL string) (Notice, error) {
	t, _ := LookupIn(lang, TemplateConfirm)
	place, err := placeName(t, utility, siteID, area, site)
	if err != nil {
		return Notice{}, err
	}
	return render(t, noticeData{Utility: utility, Place: place, ConfirmURL: confirmURL})
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

// phrase executes one of the phrases of t's language.
func phrase(t Template, name string, data any) (string, error) {
	var b strings.Builder
	if err := t.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("notice %s: %w", t.Name(), err)
	}
	return strings.TrimSpace(b.String()), nil
}

// placeName names the place a notice is about: the site's name if known,
// else the service area (when area is set), the site or the whole system,
// in the words of t's language.
func placeName(t Template, utility, siteID, area string, site *Site) (string, error) {
	d := struct{ Utility, Site, Area string }{utility, siteID, area}
	switch {
	case area != "" && site != nil && site.AreaName != "":
		return site.AreaName, nil
	case area != "":
		return phrase(t, "place-area", d)
	case site != nil && site.Name != "":
		return site.Name, nil
	case siteID != "":
		return phrase(t, "place-site", d)
	}
	return phrase(t, "place-system", d)
}

// Quantity writes a value with its unit as notices and pages show it: µg/L
// with ppb beside it (1 µg/L = 1 ppb), mg/L, NTU.
func Quantity(v float64, u tapproof.Unit) string {
	unit := string(u)
	switch u {
	case tapproof.MicrogramsPerLiter:
		unit = "µg/L (ppb)"
	case tapproof.NTU:
		unit = "NTU"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + unit
}

// stamp writes a time, in UTC, the way t's language does ("date").
func stamp(t Template, at time.Time) (string, error) {
	at = at.UTC()
	return phrase(t, "date", struct {
		Day, Month, Year int
		Clock            string
	}{at.Day(), int(at.Month()), at.Year(), at.Format("15:04")})
}

// AnalyteName returns analyte as the notice's language names it: "lead",
// "plomo".
func (n Notice) AnalyteName(a tapproof.Analyte) string {
	s, err := phrase(n.Template, "analyte", string(a))
	if err != nil {
		return string(a)
	}
	return s
}

// Footer returns, in lang, the per-recipient end of a notice sent to a
// subscriber of target (a description such as "site springfield/elm-st-12"),
// with its unsubscribe link. It is not part of the notice's hashed text.
func Footer(lang, target, unsubscribeURL string) string {
	t, _ := LookupIn(lang, TemplateConfirm)
	var b strings.Builder
	if err := t.tmpl.ExecuteTemplate(&b, "footer", struct{ Target, Unsubscribe string }{target, unsubscribeURL}); err != nil {
		return "\n-- \nTo unsubscribe: " + unsubscribeURL + "\n"
	}
	return b.String()
}
