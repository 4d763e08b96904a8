package public

import (
	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/locale"
)

// status is the sentence a page starts with and the guidance after it:
// what the most serious open alert means for a resident, and what to do.
type status struct {
	Class    string // none, screening, undetermined, system or other: for styles and tests
	Sentence string
	Guidance []string
}

// rank orders public alerts by how much they ask of a resident. A home's
// own lab result is never among them (shown).
func rank(a tapproof.Alert) int {
	switch {
	case a.Type() == tapproof.CancelMsg:
		return 0
	case a.Analyte != tapproof.Lead:
		return 1
	case a.Class == tapproof.Screening:
		return 2
	case a.Class == tapproof.SystemUndetermined:
		return 3
	case a.Class == tapproof.SystemExceedance:
		return 4
	}
	return 1
}

// statusOf is the status of a page whose open alerts are open; place names
// an alert's place for the sentence.
func statusOf(l *locale.Localizer, open []tapproof.Alert, place func(tapproof.Alert) string) status {
	var worst *tapproof.Alert
	for i := range open {
		if rank(open[i]) > 0 && (worst == nil || rank(open[i]) > rank(*worst)) {
			worst = &open[i]
		}
	}
	if worst == nil {
		return status{Class: "none", Sentence: l.T("status_none"), Guidance: []string{l.T("guidance_none")}}
	}
	a := *worst
	common := []string{l.T("guidance_formula"), l.T("guidance_cold"), l.T("guidance_flush"), l.T("guidance_boil")}
	switch rank(a) {
	case 2:
		return status{Class: "screening", Sentence: l.T("status_screening", "Place", place(a)),
			Guidance: append([]string{l.T("guidance_screening_first")}, common...)}
	case 3:
		return status{Class: "undetermined", Sentence: l.T("status_undetermined", "Utility", a.Utility,
			"Low", notice.Quantity(a.Value, a.Unit), "High", notice.Quantity(a.Upper, a.Unit), "Level", notice.Quantity(a.Level, a.Unit)),
			Guidance: append(append([]string{l.T("guidance_undetermined_first")}, common...), l.T("guidance_ask", "Utility", a.Utility))}
	case 4:
		return status{Class: "system", Sentence: l.T("status_system", "Utility", a.Utility, "Level", notice.Quantity(a.Level, a.Unit)),
			Guidance: append(append([]string{l.T("guidance_system_first")}, common...), l.T("guidance_doctor"), l.T("guidance_ask", "Utility", a.Utility))}
	}
	return status{Class: "other", Sentence: l.T("status_other", "Analyte", analyteName(l, a.Analyte), "Place", place(a)),
		Guidance: []string{l.T("guidance_cold"), l.T("guidance_flush")}}
}

// placeOf names where alert a is: its site's name, or the whole system.
func placeOf(l *locale.Localizer, sites []notice.Site) func(tapproof.Alert) string {
	return func(a tapproof.Alert) string {
		if a.Site == "" {
			return l.T("whole_system", "Utility", a.Utility)
		}
		if st, ok := notice.FindSite(sites, a.Utility, a.Site); ok && st.Name != "" {
			return st.Name
		}
		return a.Site
	}
}
