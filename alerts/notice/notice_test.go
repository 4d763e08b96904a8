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
	for _, want := range []string{"Elm Street school", "18 µg/L (ppb)", "15 µg/L (ppb)", "us-lead-lcr@v1", "since 1 June 2026 07:43 UTC", notice.HealthEffectsLead, "https://w.example/sites/springfield/elm-st-12",
		"Proof of the reading: https://w.example/v1/readings/asv-1/3/bundle", "tapproof verify"} {
		if !strings.Contains(n.Text(), want) {
			t.Errorf("notice lacks %q:\n%s", want, n.Text())
		}
	}
	if n.Template.Name() != "screening-alert@v2" || len(n.SHA256()) != 64 {
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

func TestProof(t *testing.T) {
	links := notice.Links{Base: "https://w.example/"}
	screening := alertstest.Alert(7)
	clear := alertstest.Alert(9)
	clear.ID, clear.MsgType, clear.Status = "clear-"+clear.ID, tapproof.CancelMsg, tapproof.AlertCleared
	lab := alertstest.Alert(0)
	lab.Class, lab.Device, lab.Seq = tapproof.IndividualCompliance, tapproof.LabDevice("springfield", "state-lab"), 112
	lab.ID = tapproof.IndividualAlertID("springfield", "state-lab", 112)
	system := alertstest.Alert(0)
	system.Class, system.Site, system.Device, system.ID = tapproof.SystemExceedance, "", "", tapproof.SystemExceedanceID("springfield", tapproof.Lead, "2026H1")
	copper := system
	copper.Analyte, copper.Unit, copper.ID = tapproof.Copper, tapproof.MilligramsPerLiter, tapproof.SystemExceedanceID("springfield", tapproof.Copper, "2026")
	noPeriod := system
	noPeriod.ID = "system_exceedance-springfield"
	tests := []struct {
		name string
		a    tapproof.Alert
		want notice.Proof
		text string // in the notice
	}{
		{"screening", screening, notice.Proof{URL: "https://w.example/v1/readings/asv-1/7/bundle", Type: "application/json", Kind: notice.ProofBundle, Name: "proof bundle", Desc: notice.ProofBundleDesc},
			"Proof of the reading: https://w.example/v1/readings/asv-1/7/bundle"},
		{"all-clear: the reading that cleared it", clear, notice.Proof{URL: "https://w.example/v1/readings/asv-1/9/bundle", Type: "application/json", Kind: notice.ProofBundle, Name: "proof bundle", Desc: notice.ProofBundleDesc},
			"Proof of the reading: https://w.example/v1/readings/asv-1/9/bundle"},
		{"individual compliance: the lab sample's leaf", lab, notice.Proof{URL: "https://w.example/v1/logs/springfield/leaves/112/bundle", Type: "application/json", Kind: notice.ProofBundle, Name: "proof bundle", Desc: notice.ProofBundleDesc},
			"Proof of the laboratory result: https://w.example/v1/logs/springfield/leaves/112/bundle"},
		{"system exceedance: the period's report", system, notice.Proof{URL: "https://w.example/v1/compliance/springfield/2026H1", Type: "application/json", Kind: notice.ProofReport, Name: "compliance report", Desc: notice.ReportDesc},
			"The monitoring period's report: https://w.example/v1/compliance/springfield/2026H1"},
		{"copper exceedance", copper, notice.Proof{URL: "https://w.example/v1/compliance/springfield/2026?analyte=copper", Type: "application/json", Kind: notice.ProofReport, Name: "compliance report", Desc: notice.ReportDesc},
			"report: https://w.example/v1/compliance/springfield/2026?analyte=copper"},
		{"system exceedance naming no period: the checkpoint", noPeriod, notice.Proof{URL: "https://w.example/v1/logs/springfield/checkpoint", Type: "text/plain", Kind: notice.ProofCheckpoint, Name: "checkpoint", Desc: notice.CheckpointDesc},
			"The log's signed checkpoint: https://w.example/v1/logs/springfield/checkpoint"},
	}
	for _, tt := range tests {
		if got := links.Proof(tt.a); got != tt.want {
			t.Errorf("%s: Proof() = %+v, want %+v", tt.name, got, tt.want)
		}
		n, err := notice.Render(tt.a, nil, links)
		if err != nil {
			t.Fatalf("%s: Render: %v", tt.name, err)
		}
		if !strings.Contains(n.Body, tt.text) {
			t.Errorf("%s: notice %s lacks %q:\n%s", tt.name, n.Template.Name(), tt.text, n.Body)
		}
		if n.Template.Version != 2 && n.Template.ID != notice.TemplateCopperALE {
			t.Errorf("%s: notice from %s, want the version with the proof link", tt.name, n.Template.Name())
		}
	}
	sensor := tapproof.Reading{Utility: "springfield", Site: "elm-st-12", Device: "asv-1", Seq: 41, Method: tapproof.ASV}
	sample := tapproof.LabSample{Lab: "state-lab", Utility: "springfield", Site: "elm-st-12"}.Reading(112)
	for _, tt := range []struct {
		r    tapproof.Reading
		want string
	}{
		{sensor, "https://w.example/v1/readings/asv-1/41/bundle"},
		{sample, "https://w.example/v1/logs/springfield/leaves/112/bundle"},
	} {
		if got := links.ReadingProof(tt.r); got != tt.want {
			t.Errorf("ReadingProof(%s %s/%d) = %s, want %s", tt.r.Method, tt.r.Device, tt.r.Seq, got, tt.want)
		}
	}
}
