package notice_test

import (
	"strings"
	"testing"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/internal/alertstest"
)

func TestLanguages(t *testing.T) {
	got := notice.Languages()
	if len(got) < 2 || got[0] != notice.DefaultLanguage || !notice.HasLanguage("es") || notice.HasLanguage("fr") {
		t.Fatalf("Languages() = %v", got)
	}
	ids := []string{notice.TemplateScreeningAlert, notice.TemplateScreeningClear, notice.TemplateIndividualResult, notice.TemplateTier1, notice.TemplateCopperALE, notice.TemplateUndetermined, notice.TemplateConfirm}
	for _, lang := range got {
		for _, id := range ids {
			if tm, ok := notice.LookupIn(lang, id); !ok || tm.Language != lang {
				t.Errorf("%s has no template %s of its own (got %s)", lang, id, tm.Name())
			}
		}
		for _, a := range []tapproof.Analyte{tapproof.Lead, tapproof.Copper} {
			if notice.HealthEffectsIn(lang, a) == "" || (lang != notice.DefaultLanguage && notice.HealthEffectsIn(lang, a) == notice.HealthEffects(a)) {
				t.Errorf("%s has no health-effects language of its own for %s", lang, a)
			}
		}
	}
}

func TestRenderSpanish(t *testing.T) {
	links := notice.Links{Base: "https://w.example/"}
	for _, c := range []tapproof.AlertClass{tapproof.Screening, tapproof.IndividualCompliance, tapproof.SystemExceedance} {
		a := alertstest.Alert(3)
		a.Class = c
		n, err := notice.RenderIn("es", a, &notice.Site{Name: "Escuela de Elm Street"}, links)
		if err != nil {
			t.Fatal(err)
		}
		if n.Language() != "es" || !strings.HasPrefix(n.Template.Name(), "es/") {
			t.Errorf("%s: rendered from %s", c, n.Template.Name())
		}
		for _, want := range []string{notice.HealthEffectsIn("es", tapproof.Lead), "plomo", "µg/L (ppb)", "traducción", "https://w.example/sites/springfield"} {
			if !strings.Contains(n.Text(), want) {
				t.Errorf("%s: the Spanish notice lacks %q:\n%s", c, want, n.Text())
			}
		}
		for _, english := range []string{notice.HealthEffectsLead, "What you can do", " June ", "Status page"} {
			if strings.Contains(n.Text(), english) {
				t.Errorf("%s: the Spanish notice holds English %q:\n%s", c, english, n.Text())
			}
		}
		en, _ := notice.Render(a, &notice.Site{Name: "Escuela de Elm Street"}, links)
		if en.SHA256() == n.SHA256() || en.Language() != "en" {
			t.Errorf("%s: the English and Spanish notices are one text", c)
		}
	}
	a := alertstest.Alert(3)
	n, err := notice.RenderIn("es", a, nil, links)
	if err != nil || !strings.Contains(n.Body, "1 de junio de 2026, 08:03 UTC") {
		t.Errorf("a Spanish date: %v\n%s", err, n.Body)
	}
	c, err := notice.RenderConfirmationIn("es", "springfield", "", "north", nil, "https://w.example/confirm?token=t")
	if err != nil || !strings.Contains(c.Subject, "la zona de servicio north") || c.Template.Name() != "es/subscription-confirm@v2" {
		t.Errorf("Spanish confirmation %s: %v %q", c.Template.Name(), err, c.Subject)
	}
}

// A language without a file falls back to English, and says so in the
// template it names.
func TestRenderUnknownLanguage(t *testing.T) {
	n, err := notice.RenderIn("fr", alertstest.Alert(3), nil, notice.Links{Base: "https://w.example/"})
	if err != nil || n.Language() != notice.DefaultLanguage || n.Template.Name() != "screening-alert@v2" {
		t.Errorf("RenderIn(fr) = %s, %v; want the English template", n.Template.Name(), err)
	}
}
