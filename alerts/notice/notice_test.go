package notice_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/internal/alertstest"
)

func TestRender(t *testing.T) {
	a := alertstest.Alert(3)
	a.Since = a.SampledAt.Add(-20 * time.Minute)
	n, err := notice.Render(a, &notice.Site{Name: "Elm Street school"}, notice.Links{Base: "https://w.example/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Elm Street school", "18 µg/L (ppb)", "15 µg/L (ppb)", "us-lead-lcr@v1", "since 1 June 2026 07:43 UTC", notice.HealthEffectsLead, "https://w.example/sites/springfield/elm-st-12"} {
		if !strings.Contains(n.Text(), want) {
			t.Errorf("notice lacks %q:\n%s", want, n.Text())
		}
	}
	if n.Template.Name() != "screening-alert@v1" || len(n.SHA256()) != 64 {
		t.Errorf("template %s, hash %q", n.Template.Name(), n.SHA256())
	}
	n2, _ := notice.Render(a, &notice.Site{Name: "Elm Street school"}, notice.Links{Base: "https://w.example/"})
	if n2.SHA256() != n.SHA256() {
		t.Errorf("rendering twice gives different hashes")
	}
	for _, tt := range []struct {
		class tapproof.AlertClass
		mt    tapproof.MsgType
		want  string
	}{
		{tapproof.Screening, "", notice.TemplateScreeningAlert},
		{tapproof.Screening, tapproof.UpdateMsg, notice.TemplateScreeningAlert},
		{tapproof.Screening, tapproof.CancelMsg, notice.TemplateScreeningClear},
		{tapproof.IndividualCompliance, "", notice.TemplateIndividualResult},
		{tapproof.SystemExceedance, "", notice.TemplateTier1},
	} {
		a := alertstest.Alert(1)
		a.Class, a.MsgType = tt.class, tt.mt
		if got := notice.TemplateFor(a).ID; got != tt.want {
			t.Errorf("TemplateFor(%s %s) = %s, want %s", tt.class, tt.mt, got, tt.want)
		}
		n, err := notice.Render(a, nil, notice.Links{Base: "https://w.example"})
		if err != nil || !strings.Contains(n.Body, notice.HealthEffectsLead) {
			t.Errorf("Render(%s %s) = %v without the health-effects language", tt.class, tt.mt, err)
		}
	}
}

func TestRenderConfirmation(t *testing.T) {
	site := &notice.Site{Utility: "springfield", ID: "elm-st-12", Name: "Elm Street school", Area: "north", AreaName: "North service area"}
	const confirm = "https://w.example/confirm?token=abc"
	tests := []struct {
		name               string
		siteID, area       string
		site               *notice.Site
		wantPlace, wantNot string
	}{
		{"site", "elm-st-12", "", site, "Elm Street school", "North service area"},
		{"site unknown", "elm-st-12", "", nil, "elm-st-12 (springfield)", "service area"},
		{"area", "", "north", site, "North service area", "Elm Street school"},
		{"area unknown", "", "north", nil, "the north service area", "Elm Street school"},
	}
	for _, tt := range tests {
		n, err := notice.RenderConfirmation("springfield", tt.siteID, tt.area, tt.site, confirm)
		if err != nil {
			t.Fatalf("RenderConfirmation(%s): %v", tt.name, err)
		}
		if n.Template.ID != notice.TemplateConfirm || !strings.Contains(n.Text(), tt.wantPlace) || strings.Contains(n.Text(), tt.wantNot) || !strings.Contains(n.Body, confirm) {
			t.Errorf("RenderConfirmation(%s) = %s:\n%s\nwant %q and the confirm link, not %q", tt.name, n.Template.Name(), n.Text(), tt.wantPlace, tt.wantNot)
		}
	}
}
