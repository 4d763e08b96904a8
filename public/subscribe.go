package public

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/alerts/residents"
)

// targets lists what a resident of utility can subscribe to.
func targets(sites []notice.Site, utility string) []target {
	var out []target
	seen := map[string]bool{}
	for _, a := range group(sites, utility, "") {
		if a.ID != "" && !seen[a.Utility+"/"+a.ID] {
			seen[a.Utility+"/"+a.ID] = true
			out = append(out, target{Value: "area:" + a.Utility + "/" + a.ID, Label: a.Name + " (whole area)"})
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

func (s *server) subscribeForm(w http.ResponseWriter, r *http.Request) {
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	t := r.URL.Query().Get("target")
	if _, ok := parseTarget(t); !ok {
		t = ""
	}
	s.render(w, http.StatusOK, "subscribe", page{Heading: "Get alerts", Target: t, Targets: targets(sites, "")})
}

func (s *server) subscribe(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.render(w, http.StatusRequestEntityTooLarge, "message", page{Heading: "Too large", Error: "The form was too large."})
			return
		}
		s.render(w, http.StatusBadRequest, "message", page{Heading: "Bad request", Error: "The form could not be read."})
		return
	}
	sites, err := s.cfg.Sites.Sites(r.Context())
	if err != nil {
		s.fail(w, r, "sites", err)
		return
	}
	tv := r.PostForm.Get("target")
	again := page{Heading: "Get alerts", Target: tv, Targets: targets(sites, "")}
	t, ok := parseTarget(tv)
	if !ok {
		again.Error = "Choose a site or service area."
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	ch := residents.Channel(r.PostForm.Get("channel"))
	if !slices.Contains(s.cfg.Channels, ch) {
		again.Error = "Choose how you want to receive alerts."
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	_, err = s.cfg.Subscriber.Subscribe(r.Context(), residents.SubscribeRequest{Target: t, Channel: ch, Address: r.PostForm.Get("address")})
	if errors.Is(err, residents.ErrInvalidSubscription) {
		again.Error = strings.TrimPrefix(err.Error(), residents.ErrInvalidSubscription.Error()+": ")
		s.render(w, http.StatusBadRequest, "subscribe", again)
		return
	}
	if err != nil {
		s.fail(w, r, "subscribe", err)
		return
	}
	// The same answer whether the address was new, pending or already
	// confirmed: the page must not tell who is subscribed.
	msg := "Check your inbox: we sent a confirmation link. Nothing will be sent to you until you open it."
	if ch == residents.ChannelWebhook {
		msg = "We sent a confirmation request, with the signing secret, to your webhook. Nothing more will be sent to it until the confirmation link is opened."
	}
	s.render(w, http.StatusOK, "message", page{Heading: "Almost done", Message: msg})
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

func (s *server) confirm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	sub, err := s.cfg.Subscriber.Confirm(r.Context(), token(r))
	if errors.Is(err, residents.ErrUnknownToken) {
		s.render(w, http.StatusNotFound, "message", page{Heading: "Link expired", Error: "This confirmation link is invalid or has expired. Please subscribe again."})
		return
	}
	if err != nil {
		s.fail(w, r, "confirm", err)
		return
	}
	s.render(w, http.StatusOK, "message", page{Heading: "Subscription confirmed",
		Message: "You will now receive drinking-water alerts for " + describe(sub.Target) + ". Every alert has a link to unsubscribe."})
}

func describe(t residents.Target) string {
	if t.Site != "" {
		return "site " + t.Site + " of " + t.Utility
	}
	return "the " + t.Area + " service area of " + t.Utility
}

func (s *server) unsubscribeForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	t := token(r)
	if t == "" {
		s.render(w, http.StatusBadRequest, "message", page{Heading: "Link incomplete", Error: "This unsubscribe link is incomplete."})
		return
	}
	s.render(w, http.StatusOK, "unsubscribe", page{Heading: "Unsubscribe", Token: t})
}

func (s *server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		s.render(w, http.StatusBadRequest, "message", page{Heading: "Bad request", Error: "The form could not be read."})
		return
	}
	_, err := s.cfg.Subscriber.Unsubscribe(r.Context(), token(r))
	if errors.Is(err, residents.ErrUnknownToken) {
		s.render(w, http.StatusNotFound, "message", page{Heading: "Already unsubscribed", Error: "This link is invalid or was already used."})
		return
	}
	if err != nil {
		s.fail(w, r, "unsubscribe", err)
		return
	}
	s.render(w, http.StatusOK, "message", page{Heading: "Unsubscribed", Message: "You will receive no more alerts for this subscription."})
}
