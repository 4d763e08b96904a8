package tapproof_test

import (
	"testing"
	"time"

	"github.com/tapproof/tapproof"
)

func TestRuleBook(t *testing.T) {
	h2, err := tapproof.ParsePeriod("2027H2")
	if err != nil {
		t.Fatal(err)
	}
	nov := time.Date(2027, time.November, 15, 0, 0, 0, 0, time.UTC)
	mi := tapproof.RuleBook{Jurisdictions: map[string]tapproof.Jurisdiction{"flint": "US-MI"}, LeadOverride: 4}
	for _, tt := range []struct {
		name string
		got  func() (tapproof.Rule, bool)
		want string
	}{
		{"screening after the change", func() (tapproof.Rule, bool) { return tapproof.RuleBook{}.At("u", tapproof.Lead, nov) }, "us-lead-lcri@v1"},
		{"a period is judged by its first day", func() (tapproof.Rule, bool) {
			r, err := tapproof.RuleBook{}.ForPeriod("u", tapproof.Lead, h2)
			return r, err == nil
		}, "us-lead-lcr@v1"},
		{"the override decides screening", func() (tapproof.Rule, bool) { return mi.At("flint", tapproof.Lead, nov) }, "lead-override@v1"},
		{"never compliance", func() (tapproof.Rule, bool) {
			r, err := mi.ForPeriod("flint", tapproof.Lead, h2)
			return r, err == nil
		}, "us-mi-lead@v1"},
		{"nor copper", func() (tapproof.Rule, bool) { return mi.At("flint", tapproof.Copper, nov) }, "us-copper-lcr@v1"},
		{"other utilities are federal", func() (tapproof.Rule, bool) {
			r, err := tapproof.RuleBook{Jurisdictions: mi.Jurisdictions}.ForPeriod("detroit-x", tapproof.Lead, h2)
			return r, err == nil
		}, "us-lead-lcr@v1"},
	} {
		r, ok := tt.got()
		if !ok || r.Name() != tt.want {
			t.Errorf("%s: rule %q (found %t), want %q", tt.name, r.Name(), ok, tt.want)
		}
	}
	if _, err := (tapproof.RuleBook{Rules: []tapproof.Rule{}}).ForPeriod("u", tapproof.Lead, h2); err == nil {
		t.Error("ForPeriod with no rules found one")
	}
}
