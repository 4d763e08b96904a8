package public

import (
	"context"
	"embed"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/locale"
)

//go:embed pages.html
var pagesFS embed.FS

var pages = template.Must(template.New("pages.html").Funcs(template.FuncMap{
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":  func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"qty":  notice.Quantity,
	"kind": kindID,
	"alertsOf": func(p page) alertList {
		return alertList{Base: p.Base, Links: p.Links, List: p.Open, L: p.L, Place: p.place}
	},
	"analyte": analyteName,
	"method": func(l *locale.Localizer, m tapproof.Method) string {
		return named(l, "method_"+strings.ToLower(string(m)), string(m))
	},
}).ParseFS(pagesFS, "pages.html"))

// analyteName names analyte a in l's language, or by its id if no message
// file has a name for it.
func analyteName(l *locale.Localizer, a tapproof.Analyte) string {
	return named(l, "analyte_"+string(a), string(a))
}

// named is message id, or fallback if no message file has it.
func named(l *locale.Localizer, id, fallback string, pairs ...any) string {
	if s := l.T(id, pairs...); s != id {
		return s
	}
	return fallback
}

// page is what every template sees.
type page struct {
	L        *locale.Localizer
	Langs    []langLink
	Status   *status
	History  *history
	place    func(tapproof.Alert) string
	Title    string
	Base     string // public base URL without a trailing slash
	Links    notice.Links
	Heading  string
	Utility  string
	Query    string
	Areas    []area
	Site     *notice.Site
	Readings []tapproof.Reading
	Open     []tapproof.Alert
	Channels []residents.Channel
	Target   string // preselected subscribe target
	Sample   string // the lab sample typed on a refused form, shown again
	Code     bool   // a household code was typed (never shown again)
	Targets  []target
	Message  string
	Error    string
	Token    string
	FeedURL  string
}

// alertList is what the "alerts" template sees.
type alertList struct {
	Base  string
	Links notice.Links // for each alert's proof (notice.Links.Proof)
	List  []tapproof.Alert
	L     *locale.Localizer
	Place func(tapproof.Alert) string
}

// Where names the place of alert a.
func (al alertList) Where(a tapproof.Alert) string {
	if al.Place == nil {
		return a.Site
	}
	return al.Place(a)
}

// langLink is one entry of the language switch.
type langLink struct {
	Tag, Name string
	Current   bool
}

// langCookie keeps the language a visitor picked.
const langCookie = "lang"

// pageHandler serves a page in the visitor's language l.
type pageHandler func(w http.ResponseWriter, r *http.Request, l *locale.Localizer)

// localized picks the visitor's language once per request, for h and the
// error pages it may render.
func localized(h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h(w, r, lang(w, r)) }
}

// lang returns the visitor's language: ?lang= (then kept in a cookie), the
// cookie, or Accept-Language. It sets the cookie and Vary, so it runs once
// per request (see localized).
func lang(w http.ResponseWriter, r *http.Request) *locale.Localizer {
	choice := r.URL.Query().Get("lang")
	if t, ok := locale.Parse(choice); ok && choice != "" {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: t.String(), Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode, HttpOnly: true})
	} else if c, err := r.Cookie(langCookie); err == nil {
		choice = c.Value
	}
	w.Header().Add("Vary", "Accept-Language, Cookie")
	return locale.For(locale.Choose(choice, r.Header.Get("Accept-Language")))
}

type area struct {
	Utility, ID, Name string
	Sites             []notice.Site
}

type target struct{ Value, Label string }

// render writes page name; p.L is the visitor's language.
func (s *server) render(w http.ResponseWriter, status int, name string, p page) {
	for _, t := range locale.Supported() {
		p.Langs = append(p.Langs, langLink{Tag: t.String(), Name: locale.Name(t), Current: t == p.L.Tag()})
	}
	p.Title = s.cfg.Title
	p.Base = strings.TrimSuffix(s.cfg.CAP.Links.Base, "/")
	p.Links = s.cfg.CAP.Links
	p.FeedURL = p.Base + "/v1/alerts/feed.atom"
	if p.Channels == nil {
		p.Channels = s.cfg.Channels
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, p); err != nil {
		s.cfg.Log.Warn("render page", "page", name, "error", err)
	}
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, l *locale.Localizer, what string, err error) {
	s.cfg.Log.Error("public page failed", "path", r.URL.Path, "what", what, "error", err)
	s.render(w, http.StatusInternalServerError, "message", page{L: l, Heading: l.T("went_wrong"), Error: l.T("unavailable")})
}

// notFound answers 404 with message id what.
func (s *server) notFound(w http.ResponseWriter, l *locale.Localizer, what string) {
	s.render(w, http.StatusNotFound, "message", page{L: l, Heading: l.T("not_found"), Error: l.T(what)})
}

// group sorts sites into utilities and service areas, keeping those that
// match q (case-insensitive, in name, area or id) and utility if set.
func group(l *locale.Localizer, sites []notice.Site, utility, q string) []area {
	q = strings.ToLower(strings.TrimSpace(q))
	idx := map[string]int{}
	var out []area
	for _, st := range sites {
		if utility != "" && st.Utility != utility {
			continue
		}
		hay := strings.ToLower(st.Name + " " + st.AreaName + " " + st.Area + " " + st.ID + " " + st.Utility)
		if q != "" && !strings.Contains(hay, q) {
			continue
		}
		key := st.Utility + "/" + st.Area
		i, ok := idx[key]
		if !ok {
			name := st.AreaName
			if name == "" {
				name = st.Area
			}
			if name == "" {
				name = l.T("other_sites")
			}
			out = append(out, area{Utility: st.Utility, ID: st.Area, Name: name})
			i = len(out) - 1
			idx[key] = i
		}
		out[i].Sites = append(out[i].Sites, st)
	}
	slices.SortFunc(out, func(a, b area) int {
		return strings.Compare(a.Utility+"\x00"+a.Name, b.Utility+"\x00"+b.Name)
	})
	for _, a := range out {
		slices.SortFunc(a.Sites, func(x, y notice.Site) int { return strings.Compare(x.Name, y.Name) })
	}
	return out
}

// open returns the open public alerts, of utility and site if set.
func (s *server) open(ctx context.Context, utility, site string) ([]tapproof.Alert, error) {
	open, err := s.cfg.Alerts.OpenAlerts(ctx, utility, site)
	return slices.DeleteFunc(open, func(a tapproof.Alert) bool { return !shown(a) }), err
}

// shown reports whether alert message a may be shown to the public: not a
// suppression record, and not a home's own lab result
// (tapproof.AlertClass.Private), which goes to that home only.
func shown(a tapproof.Alert) bool {
	return a.State() != tapproof.AlertSuppressed && !a.Class.Private()
}

func (s *server) index(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	utility := r.PathValue("utility")
	if utility != "" && !tapproof.ValidID(utility) {
		s.notFound(w, l, "no_such_system")
		return
	}
	q := r.URL.Query().Get("q")
	if len(q) > 100 {
		q = q[:100]
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, l, "sites", err)
		return
	}
	if utility != "" && !slices.ContainsFunc(sites, func(st notice.Site) bool { return st.Utility == utility }) {
		s.notFound(w, l, "no_such_system")
		return
	}
	open, err := s.open(r.Context(), utility, "")
	if err != nil {
		s.fail(w, r, l, "alerts", err)
		return
	}
	place := placeOf(l, sites)
	st := statusOf(l, open, place)
	s.render(w, http.StatusOK, "index", page{L: l, Status: &st, place: place, Heading: s.cfg.Title, Utility: utility, Query: q, Areas: group(l, sites, utility, q), Open: open})
}

func (s *server) site(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	utility, id := r.PathValue("utility"), r.PathValue("site")
	if !tapproof.ValidID(utility) || !tapproof.ValidID(id) {
		s.notFound(w, l, "no_such_site")
		return
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, l, "sites", err)
		return
	}
	site, ok := notice.FindSite(sites, utility, id)
	if !ok {
		s.notFound(w, l, "no_such_site")
		return
	}
	readings, err := s.cfg.Readings.LatestReadings(r.Context(), utility, id)
	if err != nil {
		s.fail(w, r, l, "readings", err)
		return
	}
	open, err := s.open(r.Context(), utility, id)
	if err != nil {
		s.fail(w, r, l, "alerts", err)
		return
	}
	to := s.cfg.Now().UTC()
	from := to.Truncate(24*time.Hour).AddDate(0, 0, -(HistoryDays - 1))
	past, err := s.history(r.Context(), utility, id, from, to)
	if err != nil {
		s.fail(w, r, l, "history", err)
		return
	}
	// A home's own lab result goes to that home (alerts/residents): the
	// page shows sensors, and the water system's aggregate in its alerts.
	readings, past = sensorReadings(readings), sensorReadings(past)
	place := placeOf(l, sites)
	st := statusOf(l, open, place)
	var hs *history
	if len(past) > 0 {
		hs = newHistory(l, s.cfg.CAP.Links, s.cfg.Rules, utility, site.Name, past, from, to)
	}
	s.render(w, http.StatusOK, "site", page{L: l, Status: &st, History: hs, place: place, Heading: site.Name, Utility: utility, Site: site, Readings: readings, Open: open,
		Target: "site:" + utility + "/" + id, Targets: targets(l, sites, utility)})
}

// kindID is the message id naming an alert's kind for residents, and the
// class its explanation and style go by.
func kindID(a tapproof.Alert) string {
	switch {
	case a.Type() == tapproof.CancelMsg && a.Class == tapproof.SystemUndetermined:
		return "decided"
	case a.Type() == tapproof.CancelMsg:
		return "clear"
	case a.Class == tapproof.SystemUndetermined:
		return "undetermined"
	case a.Class == tapproof.SystemExceedance:
		return "system"
	}
	return "screening"
}

// kindLabel names an alert's kind in English: the start of an Atom entry's
// title.
func kindLabel(a tapproof.Alert) string {
	switch {
	case a.Type() == tapproof.CancelMsg && a.Class == tapproof.SystemUndetermined:
		return "Compliance decided"
	case a.Type() == tapproof.CancelMsg:
		return "All clear"
	case a.Type() == tapproof.UpdateMsg:
		return "Update"
	case a.Class == tapproof.SystemUndetermined:
		return "Compliance undetermined"
	case a.Class == tapproof.SystemExceedance:
		return "Action level exceeded"
	}
	return "Screening alert"
}
