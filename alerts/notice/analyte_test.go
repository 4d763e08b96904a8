package notice_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
)

var links = notice.Links{Base: "https://w.example/"}

func systemAlert(a tapproof.Analyte) tapproof.Alert {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	al := tapproof.Alert{
		ID: tapproof.SystemExceedanceID("flint", a, "2026H2"), Class: tapproof.SystemExceedance, Utility: "flint",
		Analyte: a, Value: 25, Unit: tapproof.MicrogramsPerLiter, Level: 15, Rule: "us-lead-lcr@v1", SampledAt: at, RaisedAt: at,
	}
	if a == tapproof.Copper {
		al.Value, al.Unit, al.Level, al.Rule = 1.6, tapproof.MilligramsPerLiter, 1.3, "us-copper-lcr@v1"
	}
	return al
}

// A copper action level exceedance has its own notice: no Tier 1 notice,
// no lead advice, copper's health effects, in every language.
func TestCopperNotice(t *testing.T) {
	a := systemAlert(tapproof.Copper)
	for _, lang := range notice.Languages() {
		n, err := notice.RenderIn(lang, a, nil, links)
		if err != nil {
			t.Fatal(err)
		}
		if n.Template.ID != notice.TemplateCopperALE || n.Language() != lang {
			t.Errorf("%s: copper exceedance rendered from %s", lang, n.Template.Name())
		}
		for _, want := range []string{notice.HealthEffectsIn(lang, tapproof.Copper), "1.6 mg/L", "1.3 mg/L", "https://w.example/v1/compliance/flint/2026H2?analyte=copper"} {
			if !strings.Contains(n.Text(), want) {
				t.Errorf("%s: the copper notice lacks %q:\n%s", lang, want, n.Text())
			}
		}
		for _, lead := range []string{notice.HealthEffectsIn(lang, tapproof.Lead), "lead", "plomo", "This is a Tier 1 public notice", "Este es un aviso público de nivel 1"} {
			if strings.Contains(n.Text(), lead) {
				t.Errorf("%s: the copper notice holds %q:\n%s", lang, lead, n.Text())
			}
		}
	}
	if n, _ := notice.Render(systemAlert(tapproof.Lead), nil, links); n.Template.Name() != "tier1-lead-ale@v2" {
		t.Errorf("lead exceedance rendered from %s, want tier1-lead-ale@v2", n.Template.Name())
	}
}

// The English lead notices are the texts whose hashes the logs already
// hold: byte for byte what they were.
func TestLeadTextsUnchanged(t *testing.T) {
	lead := systemAlert(tapproof.Lead)
	individual := lead
	individual.Class, individual.Site, individual.Device, individual.Seq = tapproof.IndividualCompliance, "elm-st-12", tapproof.LabDevice("flint", "acme-labs"), 12
	individual.ID = tapproof.IndividualAlertID("flint", "acme-labs", 12)
	screening := individual
	screening.Class, screening.Device, screening.ID = tapproof.Screening, "asv-1", tapproof.AlertID(tapproof.Screening, "asv-1", 12)
	for _, tc := range []struct {
		a    tapproof.Alert
		want string
	}{
		{lead, "ba1cf26b81c1fc443b9071c63132596ab5cb1fc61c51553f0f3acdd3ca5956d2"},
		{individual, "8f0d28da3d8e54710e101eb369c4795448bb0041d503f4ccc88ee2f7473a472c"},
		{screening, "47ee52de90b75307101c55ab1b6d8798920a01e33bc6feb2bf477c018a86903c"},
	} {
		n, err := notice.Render(tc.a, nil, links)
		if err != nil {
			t.Fatal(err)
		}
		if n.SHA256() != tc.want {
			t.Errorf("%s (%s): SHA-256 %s, want %s:\n%s", tc.a.ID, n.Template.Name(), n.SHA256(), tc.want, n.Text())
		}
	}
}

// A period that cannot be decided has its public notice, with the range
// its samples leave, and its cancellation says it was decided again.
func TestUndeterminedNotice(t *testing.T) {
	a := systemAlert(tapproof.Lead)
	a.Class, a.ID, a.Value, a.Upper = tapproof.SystemUndetermined, tapproof.SystemUndeterminedID("flint", tapproof.Lead, "2026H2", 21), 5, 20
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	c := a
	c.ID, c.MsgType, c.Status, c.References, c.Upper = "resolved-"+a.ID, tapproof.CancelMsg, tapproof.AlertCleared, []tapproof.AlertRef{a.Ref()}, 0
	report := "https://w.example/v1/compliance/flint/2026H2"
	for _, tc := range []struct {
		lang    string
		a       tapproof.Alert
		want    []string
		wantNot []string
	}{
		{"en", a, []string{"Not yet decided", "5 µg/L (ppb)", "20 µg/L (ppb)", "15 µg/L (ppb)", "state reviewer", notice.HealthEffectsLead, report}, []string{"Tier 1"}},
		{"en", c, []string{"Decided again", "state reviewer", report}, []string{"Tier 1", "20 µg/L"}},
		{"es", a, []string{"Aún sin decidir", "plomo", "5 µg/L (ppb)", "20 µg/L (ppb)", "revisor estatal", report}, []string{"Tier 1", "Status page"}},
		{"es", c, []string{"Decidido de nuevo", report}, []string{"Tier 1", "Status page"}},
	} {
		n, err := notice.RenderIn(tc.lang, tc.a, nil, links)
		if err != nil {
			t.Fatal(err)
		}
		if n.Template.ID != notice.TemplateUndetermined || n.Language() != tc.lang {
			t.Errorf("%s %s: rendered from %s", tc.lang, tc.a.ID, n.Template.Name())
		}
		for _, w := range tc.want {
			if !strings.Contains(n.Text(), w) {
				t.Errorf("%s %s: notice lacks %q:\n%s", tc.lang, tc.a.ID, w, n.Text())
			}
		}
		for _, w := range tc.wantNot {
			if strings.Contains(n.Text(), w) {
				t.Errorf("%s %s: notice holds %q:\n%s", tc.lang, tc.a.ID, w, n.Text())
			}
		}
	}
}
