package public

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/cap"
	"github.com/tapproof/tapproof/alerts/notice"
)

func (s *server) lookup(w http.ResponseWriter, r *http.Request) (tapproof.Alert, *notice.Site, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > 200 || strings.ContainsAny(id, " ,<&/") {
		http.NotFound(w, r)
		return tapproof.Alert{}, nil, false
	}
	a, ok, err := s.cfg.Alerts.Get(r.Context(), id)
	if err != nil {
		s.cfg.Log.Error("alert lookup", "alert_id", id, "error", err)
		http.Error(w, "alert store unavailable", http.StatusServiceUnavailable)
		return tapproof.Alert{}, nil, false
	}
	if !ok || !shown(a) { // a home's own result is not public: 404 as if unknown
		http.NotFound(w, r)
		return tapproof.Alert{}, nil, false
	}
	var site *notice.Site
	if sites, err := s.cfg.Sites.Sites(r.Context()); err == nil {
		site, _ = notice.FindSite(sites, a.Utility, a.Site)
	}
	return a, site, true
}

func (s *server) cap(w http.ResponseWriter, r *http.Request) {
	a, site, ok := s.lookup(w, r)
	if !ok {
		return
	}
	doc, err := cap.Marshal(a, site, s.cfg.CAP)
	if err != nil {
		s.cfg.Log.Error("cap", "alert_id", a.ID, "error", err)
		http.Error(w, "alert not available as CAP", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write(doc)
}

// Atom (RFC 4287).
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel   string `xml:"rel,attr,omitempty"`
	Type  string `xml:"type,attr,omitempty"`
	Title string `xml:"title,attr,omitempty"`
	Href  string `xml:"href,attr"`
}

type atomEntry struct {
	ID       string     `xml:"id"`
	Title    string     `xml:"title"`
	Updated  string     `xml:"updated"`
	Category []atomCat  `xml:"category"`
	Summary  string     `xml:"summary"`
	Links    []atomLink `xml:"link"`
}

type atomCat struct {
	Term string `xml:"term,attr"`
}

func (s *server) feed(w http.ResponseWriter, r *http.Request) {
	recent, err := s.cfg.Alerts.Recent(r.Context(), s.cfg.FeedSize)
	if err == nil {
		// Every open alert is in the feed, however many messages came
		// after it.
		var open []tapproof.Alert
		open, err = s.cfg.Alerts.OpenAlerts(r.Context(), "", "")
		recent = withOpen(recent, open)
	}
	if err != nil {
		s.cfg.Log.Error("feed", "error", err)
		http.Error(w, "alert store unavailable", http.StatusServiceUnavailable)
		return
	}
	links := s.cfg.CAP.Links
	f := atomFeed{
		ID:     links.Join("v1/alerts/feed.atom"),
		Title:  s.cfg.Title + ": drinking-water alerts",
		Author: atomPerson{Name: firstNonEmpty(s.cfg.CAP.SenderName, s.cfg.CAP.Sender)},
	}
	f.Links = []atomLink{{Rel: "self", Type: "application/atom+xml", Href: f.ID}}
	updated := time.Unix(0, 0).UTC()
	for _, a := range recent {
		if !shown(a) {
			continue
		}
		text, err := notice.Render(a, nil, links)
		if err != nil {
			continue
		}
		proof := links.Proof(a)
		if a.RaisedAt.After(updated) {
			updated = a.RaisedAt
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:       links.CAP(a.ID),
			Title:    kindLabel(a) + ": " + text.Subject,
			Updated:  a.RaisedAt.UTC().Format(time.RFC3339),
			Category: []atomCat{{Term: string(a.Class)}, {Term: string(a.Type())}},
			Summary:  atomSummary(a),
			Links: []atomLink{
				{Rel: "alternate", Type: "application/cap+xml", Href: links.CAP(a.ID)},
				{Rel: "related", Type: "text/html", Href: links.Status(a.Utility, a.Site)},
				// The proof of what the alert is about, as in its
				// notice and CAP document.
				{Rel: "related", Type: proof.Type, Title: proof.Name, Href: proof.URL},
			},
		})
	}
	f.Updated = updated.Format(time.RFC3339)
	out, err := xml.MarshalIndent(f, "", "  ")
	if err != nil {
		http.Error(w, "feed unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=60")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

// withOpen returns the messages of recent, newest first, followed by the
// open alerts' newest messages that recent lacks.
func withOpen(recent, open []tapproof.Alert) []tapproof.Alert {
	have := make(map[string]bool, len(recent))
	for _, a := range recent {
		have[a.ID] = true
	}
	for _, a := range open {
		if !have[a.ID] {
			recent = append(recent, a)
		}
	}
	return recent
}

// firstNonEmpty returns a, or b if a is empty.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// atomSummary is the one line of an alert in the Atom feed.
func atomSummary(a tapproof.Alert) string {
	v, level := strconv.FormatFloat(a.Value, 'f', -1, 64), strconv.FormatFloat(a.Level, 'f', -1, 64)
	if a.Class == tapproof.SystemUndetermined {
		return fmt.Sprintf("90th percentile between %s and %s %s in the %s water system, undetermined until a state reviewer decides (action level %s %s)",
			v, strconv.FormatFloat(a.Upper, 'f', -1, 64), a.Unit, a.Utility, level, a.Unit)
	}
	if a.Class == tapproof.SystemExceedance {
		return fmt.Sprintf("90th percentile %s %s in the %s water system (action level %s %s)", v, a.Unit, a.Utility, level, a.Unit)
	}
	return fmt.Sprintf("%s %s at %s (level %s %s)", v, a.Unit, a.Site, level, a.Unit)
}
