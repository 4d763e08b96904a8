package public

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
	"github.com/tapproof/tapproof/locale"
)

// targets lists what a resident of utility can subscribe to.
func targets(l *locale.Localizer, sites []notice.Site, utility string) []target {
	var out []target
	seen := map[string]bool{}
	for _, a := range group(l, sites, utility, "") {
		if a.ID != "" && !seen[a.Utility+"/"+a.ID] {
			seen[a.Utility+"/"+a.ID] = true
			out = append(out, target{Value: "area:" + a.Utility + "/" + a.ID, Label: l.T("whole_area", "Area", a.Name)})
		}
		for _, st := range a.Sites {
			out = append(out, target{Value: "site:" + st.Utility + "/" + st.ID, Label: st.Name})
		}
	}
	return out
}

// parseTarget reads "site:<utility>/<site>" or "area:<utility>/<area>".
func parseTarget(v string) (residents.Target, bool) {
	kind, rest, ok := strings.Cut(v, ":")
	if !ok {
		return residents.Target{}, false
	}
	u, id, ok := strings.Cut(rest, "/")
	if !ok || !tapproof.ValidID(u) || !tapproof.ValidID(id) {
		return residents.Target{}, false
	}
	switch kind {
	case "site":
		return residents.Target{Utility: u, Site: id}, true
	case "area":
		return residents.Target{Utility: u, Area: id}, true
	}
	return residents.Target{}, false
}

func (s *server) subscribeForm(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, l, "sites", err)
		return
	}
	t := r.URL.Query().Get("target")
	if _, ok := parseTarget(t); !ok {
		t = ""
	}
	s.render(w, http.StatusOK, "subscribe", page{L: l, Heading: l.T("get_alerts"), Target: t, Targets: targets(l, sites, "")})
}

func (s *server) subscribe(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.render(w, http.StatusRequestEntityTooLarge, "message", page{L: l, Heading: l.T("too_large"), Error: l.T("form_too_large")})
			return
		}
		s.render(w, http.StatusBadRequest, "message", page{L: l, Heading: l.T("bad_request"), Error: l.T("form_unreadable")})
		return
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, l, "sites", err)
		return
	}
	tv := r.PostForm.Get("target")
	sample, code := strings.TrimSpace(r.PostForm.Get("sample")), r.PostForm.Get("code")
	again := page{L: l, Heading: l.T("get_alerts"), Target: tv, Targets: targets(l, sites, ""), Sample: sample, Code: code != ""}
	t, ok := parseTarget(tv)
	if !ok {
		again.Error = l.T("choose_target")
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	if sample != "" || code != "" {
		// "I have a lab result code": the household's own sample, of the
		// chosen site's or area's utility. Residents checks the code.
		t = residents.Target{Utility: t.Utility, Sample: sample}
	}
	ch := residents.Channel(r.PostForm.Get("channel"))
	if !slices.Contains(s.cfg.Channels, ch) {
		again.Error = l.T("choose_channel")
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	_, err = s.cfg.Subscriber.Subscribe(r.Context(), residents.SubscribeRequest{Target: t, Channel: ch, Address: r.PostForm.Get("address"),
		Language: noticeLanguage(r.PostForm.Get("language"), l), Code: code})
	if errors.Is(err, residents.ErrInvalidSubscription) {
		again.Error = refusal(l, err)
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	if err != nil {
		s.fail(w, r, l, "subscribe", err)
		return
	}
	// The same answer whether the address was new, pending or already
	// confirmed: the page must not tell who is subscribed.
	msg := l.T("check_inbox")
	if ch == residents.ChannelWebhook {
		msg = l.T("check_webhook")
	}
	s.render(w, http.StatusOK, "message", page{L: l, Heading: l.T("almost_done"), Message: msg})
}

func token(r *http.Request) string {
	t := r.URL.Query().Get("token")
	if t == "" && r.Method == http.MethodPost {
		t = r.PostFormValue("token")
	}
	if len(t) > 64 {
		return ""
	}
	return t
}

func (s *server) confirm(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	w.Header().Set("Cache-Control", "no-store")
	sub, err := s.cfg.Subscriber.Confirm(r.Context(), token(r))
	if errors.Is(err, residents.ErrUnknownToken) {
		s.render(w, http.StatusNotFound, "message", page{L: l, Heading: l.T("link_expired"), Error: l.T("confirm_expired")})
		return
	}
	if err != nil {
		s.fail(w, r, l, "confirm", err)
		return
	}
	s.render(w, http.StatusOK, "message", page{L: l, Heading: l.T("confirmed"),
		Message: l.T("confirmed_site", "Place", describe(l, sub.Target))})
}

func describe(l *locale.Localizer, t residents.Target) string {
	switch {
	case t.Site != "":
		return l.T("place_site", "Site", t.Site, "Utility", t.Utility)
	case t.Sample != "":
		return l.T("place_sample", "Sample", t.Sample, "Utility", t.Utility)
	}
	return l.T("place_area", "Area", t.Area, "Utility", t.Utility)
}

func (s *server) unsubscribeForm(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	w.Header().Set("Cache-Control", "no-store")
	t := token(r)
	if t == "" {
		s.render(w, http.StatusBadRequest, "message", page{L: l, Heading: l.T("link_incomplete"), Error: l.T("unsubscribe_incomplete")})
		return
	}
	s.render(w, http.StatusOK, "unsubscribe", page{L: l, Heading: l.T("unsubscribe"), Token: t})
}

func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request, l *locale.Localizer) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "message", page{L: l, Heading: l.T("bad_request"), Error: l.T("form_unreadable")})
		return
	}
	_, err := s.cfg.Subscriber.Unsubscribe(r.Context(), token(r))
	if errors.Is(err, residents.ErrUnknownToken) {
		s.render(w, http.StatusNotFound, "message", page{L: l, Heading: l.T("already_unsubscribed"), Error: l.T("unsubscribe_used")})
		return
	}
	if err != nil {
		s.fail(w, r, l, "unsubscribe", err)
		return
	}
	s.render(w, http.StatusOK, "message", page{L: l, Heading: l.T("unsubscribed"), Message: l.T("unsubscribed_done")})
}

// noticeLanguage is the language notices are sent in for a subscription
// made from a page in l: the form's choice if notices are written in it,
// else the page's language, else English.
func noticeLanguage(choice string, l *locale.Localizer) string {
	for _, c := range []string{choice, l.Lang()} {
		if t, ok := locale.Parse(c); ok && c != "" && notice.HasLanguage(t.String()) {
			return t.String()
		}
	}
	return notice.DefaultLanguage
}

// refusal says in l's language why a subscription was refused: the
// message "refused_<code>" of its *residents.Refusal, else its reason in
// English inside the message invalid_address.
func refusal(l *locale.Localizer, err error) string {
	why := l.T("invalid_address", "Why", strings.TrimPrefix(err.Error(), residents.ErrInvalidSubscription.Error()+": "))
	var r *residents.Refusal
	if errors.As(err, &r) {
		return named(l, "refused_"+string(r.Code), why, "Max", residents.MaxAddress)
	}
	return why
}
