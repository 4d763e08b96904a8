package cap_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/internal/alertstest"
)

// capSchema is the OASIS CAP 1.2 schema in the module's testdata.
func capSchema(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "cap", "CAP-v1.2.xsd")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("CAP 1.2 schema: %v", err)
	}
	return p
}

// requireTool fails the test in CI and skips it elsewhere.
func requireTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (Debian: apt-get install -y libxml2-utils)", what)
	}
	t.Skipf("%s is missing; install libxml2-utils", what)
}

// xmllint validates doc against the CAP 1.2 schema with xmllint.
func xmllint(t *testing.T, doc []byte) error {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		requireTool(t, "xmllint")
	}
	schema := capSchema(t)
	f := filepath.Join(t.TempDir(), "alert.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--noout", "--schema", schema, f).CombinedOutput()
	if err != nil {
		return errorf("xmllint: %v\n%s", err, out)
	}
	return nil
}

func TestCAPValidates(t *testing.T) {
	site := &notice.Site{Utility: "springfield", ID: "elm-st-12", Name: "Elm Street school", Area: "north", AreaName: "North service area",
		Polygon:  [][2]float64{{42.1, -83.1}, {42.2, -83.1}, {42.2, -83.0}, {42.1, -83.1}},
		Geocodes: []notice.Geocode{{Name: "SAME", Value: "026049"}}}
	fired := alertstest.Alert(1)
	fired.MsgType, fired.Status = tapproof.AlertMsg, tapproof.AlertOpen
	update := alertstest.Alert(2)
	update.ID, update.MsgType, update.References = "update-"+update.ID, tapproof.UpdateMsg, []tapproof.AlertRef{fired.Ref()}
	clear := alertstest.Alert(3)
	clear.ID, clear.MsgType, clear.Status = "clear-"+clear.ID, tapproof.CancelMsg, tapproof.AlertCleared
	clear.References = []tapproof.AlertRef{fired.Ref(), update.Ref()}
	system := alertstest.Alert(5)
	system.Class, system.Site, system.Device, system.ID = tapproof.SystemExceedance, "", "", tapproof.SystemExceedanceID("springfield", tapproof.Lead, "2026H1")
	copper := alertstest.Alert(6)
	copper.Analyte, copper.Unit, copper.Value, copper.Level = tapproof.Copper, tapproof.MilligramsPerLiter, 1.5, 1.3
	copperSystem := system
	copperSystem.Analyte, copperSystem.Unit, copperSystem.Value, copperSystem.Level, copperSystem.Rule = tapproof.Copper, tapproof.MilligramsPerLiter, 1.6, 1.3, "us-copper-lcr@v1"
	copperSystem.ID = tapproof.SystemExceedanceID("springfield", tapproof.Copper, "2026H1")
	undetermined := system
	undetermined.Class, undetermined.ID, undetermined.Value, undetermined.Upper = tapproof.SystemUndetermined, tapproof.SystemUndeterminedID("springfield", tapproof.Lead, "2026H1", 21), 5, 20
	resolved := undetermined
	resolved.ID, resolved.MsgType, resolved.Status, resolved.Upper = "resolved-"+undetermined.ID, tapproof.CancelMsg, tapproof.AlertCleared, 0
	resolved.References = []tapproof.AlertRef{undetermined.Ref()}
	cfg := cap.Config{Sender: "alerts@water.springfield.example", SenderName: "Springfield Water", Links: notice.Links{Base: "https://water.springfield.example"}}

	tests := []struct {
		name  string
		a     tapproof.Alert
		site  *notice.Site
		want  []string // substrings of the document
		avoid []string
		proof string // the resource's uri
	}{
		{"alert with polygon", fired, site, []string{"<msgType>Alert</msgType>", "<category>Health</category>", "<urgency>Expected</urgency>",
			"<certainty>Possible</certainty>", "<polygon>42.1,-83.1 42.2,-83.1 42.2,-83 42.1,-83.1</polygon>", "<valueName>SAME</valueName>",
			"<areaDesc>Elm Street school, North service area</areaDesc>", "Exposure to lead in drinking water can cause serious health effects in all age groups. Infants and children can have decreases in IQ and attention span",
			"<sent>2026-06-01T08:01:02+00:00</sent>", "<web>https://water.springfield.example/sites/springfield/elm-st-12</web>",
			"<resourceDesc>proof bundle (verify with tapproof verify)</resourceDesc>"}, []string{"<references>"}, "https://water.springfield.example/v1/readings/asv-1/1/bundle"},
		{"update", update, site, []string{"<msgType>Update</msgType>", "<references>alerts@water.springfield.example,screening-asv-1-1,2026-06-01T08:01:02+00:00</references>"}, nil,
			"https://water.springfield.example/v1/readings/asv-1/2/bundle"},
		{"all-clear", clear, nil, []string{"<msgType>Cancel</msgType>", "<responseType>AllClear</responseType>", "<urgency>Past</urgency>",
			"screening-asv-1-1,2026-06-01T08:01:02+00:00 alerts@water.springfield.example,update-screening-asv-1-2,", "<areaDesc>Site elm-st-12 of the springfield water system</areaDesc>"}, nil,
			"https://water.springfield.example/v1/readings/asv-1/3/bundle"},
		{"system exceedance", system, nil, []string{"<urgency>Immediate</urgency>", "<severity>Severe</severity>", "Tier 1", "<areaDesc>The springfield water system</areaDesc>"}, nil,
			"https://water.springfield.example/v1/compliance/springfield/2026H1"},
		{"copper system exceedance: no Tier 1", copperSystem, nil, []string{"<urgency>Expected</urgency>", "<severity>Moderate</severity>", "<responseType>Monitor</responseType>",
			"Copper action level exceeded", "corrosion control", "Wilson&#39;s Disease"}, []string{"This is a Tier 1 public notice", "Severe", "Immediate", "lead", "plomo"},
			"https://water.springfield.example/v1/compliance/springfield/2026H1?analyte=copper"},
		{"undetermined period", undetermined, nil, []string{"<msgType>Alert</msgType>", "<certainty>Possible</certainty>", "system_undetermined",
			"Not yet decided", "5 µg/L (ppb)", "20 µg/L (ppb)", "a state reviewer must decide"}, []string{"Tier 1", "Severe"},
			"https://water.springfield.example/v1/compliance/springfield/2026H1"},
		{"undetermined period resolved", resolved, nil, []string{"<msgType>Cancel</msgType>", "<responseType>Monitor</responseType>",
			"<references>alerts@water.springfield.example," + undetermined.ID + ",", "Decided again"}, []string{"AllClear", "recovery level"},
			"https://water.springfield.example/v1/compliance/springfield/2026H1"},
		{"copper", copper, nil, []string{"<event>Copper in drinking water</event>", "Wilson&#39;s Disease"}, []string{"Exposure to lead"}, "https://water.springfield.example/v1/readings/asv-1/6/bundle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := cap.Marshal(tt.a, tt.site, cfg)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if err := xmllint(t, doc); err != nil {
				t.Errorf("%v\n%s", err, doc)
			}
			for _, w := range tt.want {
				if !bytes.Contains(doc, []byte(w)) {
					t.Errorf("CAP lacks %q:\n%s", w, doc)
				}
			}
			for _, w := range tt.avoid {
				if bytes.Contains(doc, []byte(w)) {
					t.Errorf("CAP contains %q", w)
				}
			}
			var parsed struct {
				XMLName    xml.Name
				Identifier string `xml:"identifier"`
				Info       []struct {
					Language    string `xml:"language"`
					Event       string `xml:"event"`
					Description string `xml:"description"`
					Instruction string `xml:"instruction"`
					Resource    []struct {
						Desc     string `xml:"resourceDesc"`
						MimeType string `xml:"mimeType"`
						URI      string `xml:"uri"`
					} `xml:"resource"`
				} `xml:"info"`
			}
			if err := xml.Unmarshal(doc, &parsed); err != nil || parsed.XMLName.Space != cap.Namespace || parsed.Identifier != tt.a.ID {
				t.Errorf("parsed back %+v, %v; want namespace %s, identifier %s", parsed, err, cap.Namespace, tt.a.ID)
			}
			// One info block per language, English first, each the
			// notice of its language.
			if len(parsed.Info) != 2 || parsed.Info[0].Language != "en-US" || parsed.Info[1].Language != "es-US" {
				t.Fatalf("info blocks %+v, want en-US and es-US", parsed.Info)
			}
			for _, in := range parsed.Info {
				lang := in.Language[:2]
				text, _ := notice.RenderIn(lang, tt.a, tt.site, cfg.Links)
				if text.Language() != lang || in.Description != text.Body || !strings.Contains(in.Instruction, notice.HealthEffectsIn(lang, tt.a.Analyte)) {
					t.Errorf("the %s info block is not the %s notice (%s)", in.Language, lang, text.Template.Name())
				}
				// The proof of what the alert is about, the one its
				// notice links, is each info's one resource.
				desc := notice.ProofBundleDesc
				if tt.a.Class.System() {
					desc = notice.ReportDesc
				}
				if len(in.Resource) != 1 || in.Resource[0].URI != tt.proof || in.Resource[0].Desc != desc || in.Resource[0].MimeType != "application/json" {
					t.Errorf("%s resources = %+v, want one: %q, application/json, %s", in.Language, in.Resource, desc, tt.proof)
				}
			}
			if e := parsed.Info[1].Event; !strings.HasSuffix(e, "en el agua potable") || strings.Contains(e, "ead") || strings.Contains(e, "opper") {
				t.Errorf("the Spanish event is %q", e)
			}
			if text, _ := notice.Render(tt.a, tt.site, cfg.Links); !strings.Contains(text.Body, tt.proof) {
				t.Errorf("the notice does not link the CAP document's proof %s:\n%s", tt.proof, text.Body)
			}
		})
	}
}

// TestXMLLintCatchesInvalid makes sure the validation above can fail.
func TestXMLLintCatchesInvalid(t *testing.T) {
	doc, err := cap.Marshal(alertstest.Alert(1), nil, cap.Config{Sender: "x@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(doc, []byte("<category>Health</category>"), []byte("<category>Lead</category>"), 1)
	if err := xmllint(t, bad); err == nil {
		t.Errorf("xmllint accepted category Lead")
	}
	bad = bytes.Replace(doc, []byte("+00:00</sent>"), []byte("Z</sent>"), 1)
	if err := xmllint(t, bad); err == nil {
		t.Errorf("xmllint accepted a sent time in Z form")
	}
}

func TestCAPRefuses(t *testing.T) {
	sup := alertstest.Alert(1)
	sup.Status = tapproof.AlertSuppressed
	// A home's own lab result goes to that home, never to a public
	// warning system.
	individual := alertstest.Alert(4)
	individual.Class, individual.Device, individual.ID, individual.Sample = tapproof.IndividualCompliance,
		tapproof.LabDevice("springfield", "lab-1"), tapproof.IndividualAlertID("springfield", "lab-1", 4), "lab-1/S4"
	tests := []struct {
		name string
		a    tapproof.Alert
		cfg  cap.Config
	}{
		{"suppression", sup, cap.Config{Sender: "x@example.org"}},
		{"individual compliance", individual, cap.Config{Sender: "x@example.org"}},
		{"no sender", alertstest.Alert(1), cap.Config{}},
		{"sender with comma", alertstest.Alert(1), cap.Config{Sender: "a,b"}},
		{"bad status", alertstest.Alert(1), cap.Config{Sender: "x", Status: "Real"}},
	}
	for _, tt := range tests {
		if _, err := cap.Marshal(tt.a, nil, tt.cfg); err == nil {
			t.Errorf("Marshal(%s) = nil error", tt.name)
		}
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
