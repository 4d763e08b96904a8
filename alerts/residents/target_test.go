package residents_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
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

// TestConfirmationSaysItsExpiry: the confirmation request tells the
// resident how long its link works, which is how long a pending
// subscription lives.
func TestConfirmationSaysItsExpiry(t *testing.T) {
	for lang, want := range map[string]string{"en": "expires in 48 hours", "es": "caduca en 48 horas"} {
		n, err := notice.RenderConfirmationIn(lang, "springfield", "elm-st-12", "", nil, "https://water.example/confirm?t=x")
		if err != nil {
			t.Fatal(err)
		}
		if residents.DefaultPendingTTL != 48*time.Hour || !strings.Contains(n.Body, want) {
			t.Errorf("%s confirmation with pending subscriptions living %v says:\n%s\nwant %q", lang, residents.DefaultPendingTTL, n.Body, want)
		}
	}
}
