package residents_test

import (
	"slices"
	"testing"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/residents"
)

// TestTargetConcerns: a home's own result concerns the subscription bound
// to its sample alone, never the site, the area or the system; an
// individual alert stored before alerts named their sample concerns
// nobody; every other alert concerns the site, area and system
// subscriptions it is about, and no sample subscription.
func TestTargetConcerns(t *testing.T) {
	result := tapproof.Alert{Class: tapproof.IndividualCompliance, Utility: "springfield", Site: "elm-st-12", Sample: "acme-labs/L1"}
	legacy := result
	legacy.Sample = ""
	screening := tapproof.Alert{Class: tapproof.Screening, Utility: "springfield", Site: "elm-st-12"}
	targets := map[string]residents.Target{
		"site":         {Utility: "springfield", Site: "elm-st-12"},
		"area":         {Utility: "springfield", Area: "north"},
		"home":         {Utility: "springfield", Sample: "acme-labs/L1"},
		"another home": {Utility: "springfield", Sample: "acme-labs/L2"},
		"other system": {Utility: "shelbyville", Sample: "acme-labs/L1"},
	}
	for _, tc := range []struct {
		alert tapproof.Alert
		name  string
		want  []string
	}{
		{result, "a home's result", []string{"home"}},
		{legacy, "a result without its sample", nil},
		{screening, "a screening alert", []string{"area", "site"}},
	} {
		var got []string
		for _, name := range []string{"another home", "area", "home", "other system", "site"} {
			if targets[name].Concerns(tc.alert, "north") {
				got = append(got, name)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s concerns %v, want %v", tc.name, got, tc.want)
		}
	}
}
