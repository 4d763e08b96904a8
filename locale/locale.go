// Package locale holds the languages tapproof speaks to residents: the
// message files of the public pages and CAP documents (messages/*.toml, one
// file per language, in go-i18n's format), and the choice of a language
// for a visitor from an explicit choice and the browser's Accept-Language.
//
// Adding a language is adding its message file, messages/<tag>.toml (tag a
// BCP 47 language tag, such as "es" or "vi"), beside the notice texts of
// alerts/notice. A message missing from a file falls back to English,
// which holds every message; TestEveryLanguageComplete lists what is
// missing.
//
// locale imports no tapproof package.
package locale

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Default is the language every message exists in, and the one chosen when
// nothing else matches.
var Default = language.English

//go:embed messages/*.toml
var messagesFS embed.FS

var (
	bundle    = i18n.NewBundle(Default)
	supported []language.Tag // Default first
	matcher   language.Matcher
)

func init() {
	bundle.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	files, err := fs.Glob(messagesFS, "messages/*.toml")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		mf, err := bundle.LoadMessageFileFS(messagesFS, f)
		if err != nil {
			panic(fmt.Sprintf("locale: %s: %v", f, err))
		}
		if mf.Tag != Default {
			supported = append(supported, mf.Tag)
		}
	}
	slices.SortFunc(supported, func(a, b language.Tag) int { return strings.Compare(a.String(), b.String()) })
	supported = append([]language.Tag{Default}, supported...)
	matcher = language.NewMatcher(supported)
}

// Supported returns the languages with a message file, Default first.
func Supported() []language.Tag { return slices.Clone(supported) }

// Choose returns the supported language for a visitor: choice (a tag the
// visitor picked, from the page's language switch) if it is supported, else
// the best match for accept (an Accept-Language header), else Default.
func Choose(choice, accept string) language.Tag {
	if choice != "" {
		if t, err := language.Parse(choice); err == nil {
			if m, ok := exact(t); ok {
				return m
			}
		}
	}
	tags, _, err := language.ParseAcceptLanguage(accept)
	if err != nil || len(tags) == 0 {
		return Default
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return Default
	}
	return supported[i]
}

// Parse returns the supported language tag names, and false if it names
// none: "es", "es-MX" and "ES" all give Spanish.
func Parse(tag string) (language.Tag, bool) {
	t, err := language.Parse(tag)
	if err != nil {
		return Default, false
	}
	return exact(t)
}

func exact(t language.Tag) (language.Tag, bool) {
	base, _ := t.Base()
	for _, s := range supported {
		if b, _ := s.Base(); b == base {
			return s, true
		}
	}
	return Default, false
}

// Name returns the name of language t in t itself, as a language switch
// shows it: "English", "español".
func Name(t language.Tag) string { return display.Self.Name(t) }

// Localizer gives the messages of one language.
type Localizer struct {
	tag language.Tag
	l   *i18n.Localizer
}

// For returns the Localizer of t, which must be supported (Choose, Parse).
func For(t language.Tag) *Localizer {
	return &Localizer{tag: t, l: i18n.NewLocalizer(bundle, t.String())}
}

// Tag is the Localizer's language.
func (l *Localizer) Tag() language.Tag { return l.tag }

// Lang is the Localizer's language as a BCP 47 tag, for an HTML lang
// attribute.
func (l *Localizer) Lang() string { return l.tag.String() }

// T returns message id, filled with data given as name, value pairs:
// T("alert.value", "Value", "23 µg/L"). A message the language lacks comes
// from Default; an unknown id is returned as it is, so that a typo shows on
// the page and in tests rather than as an empty string.
func (l *Localizer) T(id string, pairs ...any) string {
	var data map[string]any
	if len(pairs) > 0 {
		data = make(map[string]any, len(pairs)/2)
		for i := 0; i+1 < len(pairs); i += 2 {
			data[fmt.Sprint(pairs[i])] = pairs[i+1]
		}
	}
	s, err := l.l.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil && s == "" {
		return id
	}
	return s
}

// Has reports whether message id exists in the Localizer's own language,
// without falling back to Default.
func (l *Localizer) Has(id string) bool {
	_, tag, err := l.l.LocalizeWithTag(&i18n.LocalizeConfig{MessageID: id})
	return err == nil && tag == l.tag
}

// IDs returns the message ids of Default's file, sorted.
func IDs() []string {
	raw, err := messagesFS.ReadFile(path.Join("messages", Default.String()+".toml"))
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := toml.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	ids := make([]string, 0, len(m))
	for k := range m {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	return ids
}

// Date writes the day of t (in UTC) in the Localizer's language.
func (l *Localizer) Date(t time.Time) string {
	t = t.UTC()
	return l.T("date", "Day", t.Day(), "Month", l.month(t.Month()), "Year", t.Year())
}

// DateTime writes t, in UTC, to the minute in the Localizer's language.
func (l *Localizer) DateTime(t time.Time) string {
	t = t.UTC()
	return l.T("date_time", "Day", t.Day(), "Month", l.month(t.Month()), "Year", t.Year(), "Clock", t.Format("15:04"))
}

func (l *Localizer) month(m time.Month) string {
	names := strings.Fields(l.T("months"))
	if int(m) > len(names) {
		return m.String()
	}
	return names[m-1]
}
