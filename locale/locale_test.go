package locale_test

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"

	"github.com/tapproof/tapproof/locale"
)

func TestChoose(t *testing.T) {
	for _, tt := range []struct {
		choice, accept string
		want           language.Tag
	}{
		{"", "", language.English},
		{"", "es-MX,es;q=0.9,en;q=0.8", language.Spanish},
		{"", "fr-FR,fr;q=0.9,es;q=0.5", language.Spanish}, // French is not offered; Spanish is the next choice
		{"", "de-DE", language.English},
		{"en", "es", language.English}, // the visitor's switch wins over the browser
		{"es", "en-US", language.Spanish},
		{"xx-nonsense", "es", language.Spanish},
		{"fr", "", language.English},
		{"", "garbage;;;q=", language.English},
	} {
		if got := locale.Choose(tt.choice, tt.accept); got != tt.want {
			t.Errorf("Choose(%q, %q) = %v, want %v", tt.choice, tt.accept, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"es", "ES", "es-MX", "es-419"} {
		if got, ok := locale.Parse(s); !ok || got != language.Spanish {
			t.Errorf("Parse(%q) = %v, %v; want es", s, got, ok)
		}
	}
	if _, ok := locale.Parse("fr"); ok {
		t.Error("Parse(fr) is supported; there is no French file")
	}
}

func TestSupported(t *testing.T) {
	got := locale.Supported()
	if len(got) < 2 || got[0] != language.English || got[1] != language.Spanish {
		t.Fatalf("Supported() = %v, want [en es ...]", got)
	}
	if locale.Name(language.Spanish) != "español" {
		t.Errorf("Name(es) = %q", locale.Name(language.Spanish))
	}
}

// Every language has every message, so that no page mixes languages.
func TestEveryLanguageComplete(t *testing.T) {
	ids := locale.IDs()
	if len(ids) < 50 {
		t.Fatalf("only %d English messages", len(ids))
	}
	for _, tag := range locale.Supported()[1:] {
		l := locale.For(tag)
		var missing []string
		for _, id := range ids {
			if !l.Has(id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s lacks %d messages: %s", tag, len(missing), strings.Join(missing, ", "))
		}
	}
}

func TestT(t *testing.T) {
	es := locale.For(language.Spanish)
	if got := es.T("status_screening", "Place", "Elm St"); !strings.Contains(got, "Elm St") || !strings.Contains(got, "laboratorio") {
		t.Errorf("T(status_screening) = %q", got)
	}
	if got := es.T("no-such-message"); got != "no-such-message" {
		t.Errorf("an unknown id gives %q, want the id", got)
	}
	if !es.Has("translation_note") || locale.For(language.English).Has("translation_note") {
		t.Error("only translations carry a translation note")
	}
}

func TestDate(t *testing.T) {
	at := time.Date(2027, time.November, 1, 9, 5, 0, 0, time.UTC)
	if got := locale.For(language.Spanish).DateTime(at); got != "1 de noviembre de 2027, 09:05 UTC" {
		t.Errorf("Spanish DateTime = %q", got)
	}
	if got := locale.For(language.English).Date(at); got != "1 November 2027" {
		t.Errorf("English Date = %q", got)
	}
}
