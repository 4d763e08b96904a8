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
	"github.com/tapproof/tapproof/alerts"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
)

//go:embed pages.html
var pagesFS embed.FS

var pages = template.Must(template.New("pages.html").Funcs(template.FuncMap{
	"when":     func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
	"iso":      func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":      func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"kind":     kindLabel,
	"bundle":   func() string { return notice.ProofBundleDesc },
	"alertsOf": func(p page) alertList { return alertList{Base: p.Base, Links: p.Links, List: p.Open} },
}).ParseFS(pagesFS, "pages.html"))

// page is what every template sees.
type page struct {
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
}

type area struct {
	Utility, ID, Name string
	Sites             []notice.Site
}

type target struct{ Value, Label string }

func (s *server) render(w http.ResponseWriter, status int, name string, p page) {
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

func (s *server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.cfg.Log.Error("public page failed", "path", r.URL.Path, "what", what, "error", err)
	s.render(w, http.StatusInternalServerError, "message", page{Heading: "Something went wrong",
		Error: "This page is unavailable right now. Please try again in a few minutes."})
}

func (s *server) notFound(w http.ResponseWriter, what string) {
	s.render(w, http.StatusNotFound, "message", page{Heading: "Not found", Error: what})
}

// group sorts sites into utilities and service areas, keeping those that
// match q (case-insensitive, in name, area or id) and utility if set.
func group(sites []notice.Site, utility, q string) []area {
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
				name = "Other sites"
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

// open returns the open alerts, of utility and site if set.
func (s *server) open(ctx context.Context, utility, site string) ([]tapproof.Alert, error) {
	recent, err := s.cfg.Alerts.Recent(ctx, DefaultRecent)
	if err != nil {
		return nil, err
	}
	var out []tapproof.Alert
	for _, a := range alerts.Open(recent) {
		if (utility == "" || a.Utility == utility) && (site == "" || a.Site == site || a.Site == "") {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("utility")
	if utility != "" && !tapproof.ValidID(utility) {
		s.notFound(w, "There is no such water system.")
		return
	}
	q := r.URL.Query().Get("q")
	if len(q) > 100 {
		q = q[:100]
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	if utility != "" && !slices.ContainsFunc(sites, func(st notice.Site) bool { return st.Utility == utility }) {
		s.notFound(w, "There is no such water system.")
		return
	}
	open, err := s.open(r.Context(), utility, "")
	if err != nil {
		s.fail(w, r, "alerts", err)
		return
	}
	s.render(w, http.StatusOK, "index", page{Heading: s.cfg.Title, Utility: utility, Query: q, Areas: group(sites, utility, q), Open: open})
}

func (s *server) site(w http.ResponseWriter, r *http.Request) {
	utility, id := r.PathValue("utility"), r.PathValue("site")
	if !tapproof.ValidID(utility) || !tapproof.ValidID(id) {
		s.notFound(w, "There is no such site.")
		return
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	site, ok := notice.FindSite(sites, utility, id)
	if !ok {
		s.notFound(w, "There is no such site.")
		return
	}
	readings, err := s.cfg.Readings.LatestReadings(r.Context(), utility, id)
	if err != nil {
		s.fail(w, r, "readings", err)
		return
	}
	open, err := s.open(r.Context(), utility, id)
	if err != nil {
		s.fail(w, r, "alerts", err)
		return
	}
	s.render(w, http.StatusOK, "site", page{Heading: site.Name, Utility: utility, Site: site, Readings: readings, Open: open,
		Target: "site:" + utility + "/" + id, Targets: targets(sites, utility)})
}

// kindLabel names an alert's kind for residents: the "kind" of the pages and
// the start of an Atom entry's title.
func kindLabel(a tapproof.Alert) string {
	switch {
	case a.Type() == tapproof.CancelMsg:
		return "All clear"
	case a.Type() == tapproof.UpdateMsg:
		return "Update"
	case a.Class == tapproof.SystemExceedance:
		return "Action level exceeded"
	case a.Class == tapproof.IndividualCompliance:
		return "Lab result above action level"
	}
	return "Screening alert"
}
