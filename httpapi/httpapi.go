// Package httpapi is tapproof's HTTP API: health and metrics for operators,
// read-only log, proof and alert endpoints for regulators and residents, and
// a small admin API, behind a bearer token, to enroll devices.
//
// Every public endpoint is GET-only and needs no credentials; nothing it
// serves is secret. A home's own lab result (an individual compliance
// alert, tapproof.AlertClass.Private) is never listed: it goes to that
// home. The admin API issues the household code with which the home
// subscribes to it. The handlers depend on small interfaces declared here,
// implemented by package platform. Client (client.go) is the other side:
// what the commands use to read or administer a server.
//
// httpapi must not import ingest, influx or dashboards.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapproof/tapproof"
)

// DefaultAddr is where the API listens by default.
const DefaultAddr = "127.0.0.1:8480"

// The backends' errors select an HTTP status: one wrapping
// tapproof.ErrNotFound is a 404, tapproof.ErrNotYetAnchored a 404 with
// Retry-After (the entry exists, no published checkpoint covers it yet),
// tapproof.ErrConflict a 409 (a device enrolled with a different key).

// LogSummary describes one log for GET /v1/logs.
type LogSummary struct {
	Utility     string `json:"utility"`
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	Size        uint64 `json:"size"` // size of the latest published checkpoint
}

// Logs serves the verifiable logs.
type Logs interface {
	Logs(ctx context.Context) ([]LogSummary, error)
	LatestCheckpoint(ctx context.Context, utility string) ([]byte, error)
	Checkpoint(ctx context.Context, utility string, size uint64) ([]byte, error)
	ConsistencyProof(ctx context.Context, utility string, from, to uint64) ([][]byte, error)
	// Leaves returns up to count leaves of utility's log from start on, in
	// order; fewer, or none, past what the log has integrated.
	Leaves(ctx context.Context, utility string, start, count uint64) ([][]byte, error)
	// Bundle returns the JSON offline bundle of reading seq of device.
	Bundle(ctx context.Context, device string, seq uint64) (any, error)
	// LeafBundle returns the JSON offline bundle of the entry at index of
	// utility's log, whatever it holds: a lab sample's is the proof an
	// individual compliance alert links.
	LeafBundle(ctx context.Context, utility string, index uint64) (any, error)
}

// Devices serves the public device registry and enrolls devices.
type Devices interface {
	Devices() []tapproof.Device
	// Enroll registers the device of a signed enrollment envelope.
	Enroll(ctx context.Context, envelope []byte) (tapproof.Device, error)
	// Revoke ends a device: its revocation is recorded in its utility's
	// log with reason, its readings are refused from then on and its
	// connections to the broker are closed. tapproof.ErrNotFound if there is no such
	// device.
	Revoke(ctx context.Context, device, reason string) (tapproof.Device, error)
}

// Alerts serves recent and open alerts. *alerts.Store implements it.
type Alerts interface {
	Recent(ctx context.Context, limit int) ([]tapproof.Alert, error)
	// OpenAlerts returns the open alerts of utility (all if empty), of
	// site if set (with the whole system's), newest first.
	OpenAlerts(ctx context.Context, utility, site string) ([]tapproof.Alert, error)
}

// Compliance serves monitoring periods' compliance reports and the log
// entries they are computed from.
type Compliance interface {
	// Report returns the JSON report of utility's monitoring period for
	// analyte ("" is lead). A *tapproof.Rejection is a bad request.
	Report(ctx context.Context, utility, period, analyte string) (any, error)
	// Leaves writes utility's lab sample, invalidation and compliance
	// notice entries as JSON lines, {"index":N,"leaf":"<base64>"}, in log
	// order.
	Leaves(ctx context.Context, utility string, w io.Writer) error
}

// Households issues household codes: the code with which a household
// subscribes to its own compliance sample's result.
// *residents.HouseholdCodes implements it.
type Households interface {
	// Code returns the code of sample sampleID of lab for utility; a
	// *tapproof.Rejection if an id is not one.
	Code(utility, lab, sampleID string) (string, error)
}

// Config configures the API.
type Config struct {
	Logs     Logs
	Devices  Devices
	Alerts   Alerts
	Gatherer prometheus.Gatherer
	// Ready reports whether tapproof can take readings; nil error is ready.
	Ready func(ctx context.Context) error
	// AdminToken guards the admin API. Empty disables it.
	AdminToken string
	Log        *slog.Logger

	// Compliance serves /v1/compliance; nil answers 404 there.
	Compliance Compliance
	// Households issues household codes (admin); nil answers 404.
	Households Households
}

// Handler returns the API's HTTP handler.
func Handler(cfg Config) http.Handler {
	a := &api{cfg: cfg}
	if cfg.AdminToken != "" {
		h := sha256.Sum256([]byte(cfg.AdminToken))
		a.token = h[:]
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/logs", a.logs)
	mux.HandleFunc("GET /v1/logs/{log}/checkpoint", a.checkpoint)
	mux.HandleFunc("GET /v1/logs/{log}/checkpoints/{size}", a.checkpoint)
	mux.HandleFunc("GET /v1/logs/{log}/proof/consistency", a.consistency)
	mux.HandleFunc("GET /v1/logs/{log}/leaves", a.leaves)
	mux.HandleFunc("GET /v1/logs/{log}/leaves/{index}/bundle", a.leafBundle)
	mux.HandleFunc("GET /v1/readings/{device}/{seq}/bundle", a.bundle)
	mux.HandleFunc("GET /v1/devices", a.devices)
	mux.HandleFunc("GET /v1/alerts", a.alerts)
	mux.HandleFunc("GET /v1/compliance/{utility}/leaves", a.complianceLeaves)
	mux.HandleFunc("GET /v1/compliance/{utility}/{period}", a.complianceReport)
	mux.HandleFunc("POST /v1/admin/devices", a.admin(a.enroll))
	mux.HandleFunc("POST /v1/admin/devices/{device}/revoke", a.admin(a.revoke))
	mux.HandleFunc("POST /v1/admin/household-codes", a.admin(a.householdCode))
	return mux
}

// NewServer returns an http.Server for h with conservative timeouts.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

type api struct {
	cfg   Config
	token []byte // SHA-256 of the admin token
}

func (a *api) ready(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	io.WriteString(w, "ready\n")
}

func (a *api) logs(w http.ResponseWriter, r *http.Request) {
	ls, err := a.cfg.Logs.Logs(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ls == nil {
		ls = []LogSummary{}
	}
	writeJSON(w, ls)
}

func (a *api) checkpoint(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("log")
	if !tapproof.ValidID(utility) {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	var (
		cp  []byte
		err error
	)
	if s := r.PathValue("size"); s != "" {
		size, perr := strconv.ParseUint(s, 10, 64)
		if perr != nil {
			http.Error(w, "size must be a whole number", http.StatusBadRequest)
			return
		}
		cp, err = a.cfg.Logs.Checkpoint(r.Context(), utility, size)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		cp, err = a.cfg.Logs.LatestCheckpoint(r.Context(), utility)
		w.Header().Set("Cache-Control", "no-cache")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(cp)
}

// ConsistencyProof is the JSON answer of the consistency endpoint.
type ConsistencyProof struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes [][]byte `json:"hashes"` // base64 in JSON
}

func (a *api) consistency(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("log")
	from, err1 := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	to, err2 := strconv.ParseUint(r.URL.Query().Get("to"), 10, 64)
	if err1 != nil || err2 != nil || from > to {
		http.Error(w, "from and to must be whole numbers with from <= to", http.StatusBadRequest)
		return
	}
	if !tapproof.ValidID(utility) {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	p, err := a.cfg.Logs.ConsistencyProof(r.Context(), utility, from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if p == nil {
		p = [][]byte{}
	}
	writeJSON(w, ConsistencyProof{From: from, To: to, Hashes: p})
}

// MaxLeaves is the most leaves GET /v1/logs/{log}/leaves returns at once.
const MaxLeaves = 1000

// leaves serves the leaves of a log, as JSON lines, from start on: count of
// them (at most MaxLeaves, the default), fewer past the end. With them and
// a checkpoint anyone can read a whole log back and check it (anchor.Replay).
func (a *api) leaves(w http.ResponseWriter, r *http.Request) {
	utility, q := r.PathValue("log"), r.URL.Query()
	start, err := strconv.ParseUint(q.Get("start"), 10, 64)
	if err != nil {
		http.Error(w, "start must be a leaf index", http.StatusBadRequest)
		return
	}
	count := uint64(MaxLeaves)
	if c := q.Get("count"); c != "" {
		if count, err = strconv.ParseUint(c, 10, 64); err != nil || count == 0 || count > MaxLeaves {
			http.Error(w, fmt.Sprintf("count must be 1 to %d", MaxLeaves), http.StatusBadRequest)
			return
		}
	}
	if !tapproof.ValidID(utility) {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	ls, err := a.cfg.Logs.Leaves(r.Context(), utility, start, count)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	var buf []byte
	for i, l := range ls {
		buf = appendLeafLine(buf, start+uint64(i), l)
	}
	w.Write(buf) // an error: the client went away
}

func (a *api) bundle(w http.ResponseWriter, r *http.Request) {
	device := r.PathValue("device")
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || !tapproof.ValidID(device) {
		http.Error(w, "want /v1/readings/{device}/{seq}/bundle", http.StatusBadRequest)
		return
	}
	b, err := a.cfg.Logs.Bundle(r.Context(), device, seq)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", "attachment; filename=\""+tapproof.ReadingKey(device, seq)+".bundle.json\"")
	writeJSON(w, b)
}

func (a *api) leafBundle(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("log")
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		http.Error(w, "want /v1/logs/{log}/leaves/{index}/bundle, index a leaf index", http.StatusBadRequest)
		return
	}
	if !tapproof.ValidID(utility) {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	b, err := a.cfg.Logs.LeafBundle(r.Context(), utility, index)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", "attachment; filename=\""+utility+"-leaf-"+strconv.FormatUint(index, 10)+".bundle.json\"")
	writeJSON(w, b)
}

// DeviceView is the public view of a device.
type DeviceView struct {
	ID        string                `json:"id"`
	Utility   string                `json:"utility"`
	Site      string                `json:"site"`
	Kind      tapproof.Method       `json:"kind"`
	PublicKey string                `json:"public_key"` // base64 Ed25519
	Firmware  string                `json:"firmware_sha256"`
	Status    tapproof.DeviceStatus `json:"status"`
}

func (a *api) devices(w http.ResponseWriter, _ *http.Request) {
	out := []DeviceView{}
	for _, d := range a.cfg.Devices.Devices() {
		out = append(out, DeviceView{ID: d.ID, Utility: d.Utility, Site: d.Site, Kind: d.Kind,
			PublicKey: base64.StdEncoding.EncodeToString(d.PublicKey), Firmware: d.Firmware, Status: d.Status})
	}
	writeJSON(w, out)
}

// alerts serves the newest alert messages, or with ?state=open the open
// alerts (of ?utility= and ?site= if given), each as its newest message;
// never a home's own lab result, which goes to that home only.
func (a *api) alerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var (
		as  []tapproof.Alert
		err error
	)
	switch q.Get("state") {
	case "open":
		utility, site := q.Get("utility"), q.Get("site")
		if (utility != "" && !tapproof.ValidID(utility)) || (site != "" && (utility == "" || !tapproof.ValidID(site))) {
			http.Error(w, "utility and site must be ids, and site needs its utility", http.StatusBadRequest)
			return
		}
		as, err = a.cfg.Alerts.OpenAlerts(r.Context(), utility, site)
	case "":
		limit := 100
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1000 {
				http.Error(w, "limit must be 1..1000", http.StatusBadRequest)
				return
			}
			limit = n
		}
		as, err = a.cfg.Alerts.Recent(r.Context(), limit)
	default:
		http.Error(w, "state must be open, or absent for the newest messages", http.StatusBadRequest)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	as = slices.DeleteFunc(as, func(a tapproof.Alert) bool { return a.Class.Private() })
	if as == nil {
		as = []tapproof.Alert{}
	}
	writeJSON(w, as)
}

func (a *api) complianceReport(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("utility")
	if a.cfg.Compliance == nil || !tapproof.ValidID(utility) {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	rep, err := a.cfg.Compliance.Report(r.Context(), utility, r.PathValue("period"), r.URL.Query().Get("analyte"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, rep)
}

func (a *api) complianceLeaves(w http.ResponseWriter, r *http.Request) {
	utility := r.PathValue("utility")
	if a.cfg.Compliance == nil || !tapproof.ValidID(utility) {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	lw := &lazyWriter{w: w, contentType: "application/jsonl"}
	err := a.cfg.Compliance.Leaves(r.Context(), utility, lw)
	switch {
	case err == nil && !lw.started:
		lw.start() // no entries: an empty, successful answer
	case err != nil && !lw.started:
		a.fail(w, r, err)
	case err != nil:
		// A truncated list must not read as a complete one: abort the
		// response so that the client sees an error, not fewer leaves.
		a.cfg.Log.Error("http: compliance leaves cut short", slog.String("utility", utility), slog.Any("error", err))
		panic(http.ErrAbortHandler)
	}
}

// lazyWriter sends the status and headers on the first write, so that a
// handler streaming from a backend can still answer an early error with
// its status.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", l.contentType)
	l.w.Header().Set("Cache-Control", "no-cache")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}

// admin wraps h with bearer-token authentication.
func (a *api) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.token == nil {
			http.Error(w, "admin API disabled: no admin token configured", http.StatusForbidden)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tapproof-admin"`)
			http.Error(w, "admin token required", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (a *api) enroll(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	d, err := a.cfg.Devices.Enroll(r.Context(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.cfg.Log.Info("device enrolled", slog.String("device", d.ID), slog.String("utility", d.Utility), slog.String("site", d.Site))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	writeJSON(w, DeviceView{ID: d.ID, Utility: d.Utility, Site: d.Site, Kind: d.Kind,
		PublicKey: base64.StdEncoding.EncodeToString(d.PublicKey), Firmware: d.Firmware, Status: d.Status})
}

// RevokeRequest is the body of POST /v1/admin/devices/{device}/revoke.
type RevokeRequest struct {
	// Reason is recorded in the public log: say why, never who lives where.
	Reason string `json:"reason"`
}

func (a *api) revoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body must be {\"reason\": \"...\"}")
		return
	}
	d, err := a.cfg.Devices.Revoke(r.Context(), r.PathValue("device"), req.Reason)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.cfg.Log.Info("device revoked", slog.String("device", d.ID), slog.String("utility", d.Utility))
	writeJSON(w, DeviceView{ID: d.ID, Utility: d.Utility, Site: d.Site, Kind: d.Kind,
		PublicKey: base64.StdEncoding.EncodeToString(d.PublicKey), Firmware: d.Firmware, Status: d.Status})
}

// HouseholdCodeRequest is the body of POST /v1/admin/household-codes: the
// compliance sample a household's tap water was drawn for.
type HouseholdCodeRequest struct {
	Utility  string `json:"utility"`
	Lab      string `json:"lab"`
	SampleID string `json:"sample_id"`
}

// HouseholdCode is the answer of POST /v1/admin/household-codes: the code
// to give the household, with which it subscribes to its result on the
// public pages. It is a secret of that household: never log it.
type HouseholdCode struct {
	HouseholdCodeRequest
	// Sample is how the household names its sample on the subscribe
	// form: "<lab>/<sample id>".
	Sample string `json:"sample"`
	Code   string `json:"code"`
}

func (a *api) householdCode(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Households == nil {
		a.fail(w, r, tapproof.ErrNotFound)
		return
	}
	var req HouseholdCodeRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `body must be {"utility": "...", "lab": "...", "sample_id": "..."}`)
		return
	}
	code, err := a.cfg.Households.Code(req.Utility, req.Lab, req.SampleID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// Who asked for which sample, never the code.
	a.cfg.Log.Info("household code issued", slog.String("utility", req.Utility), slog.String("sample", tapproof.LabSampleKey(req.Lab, req.SampleID)))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, HouseholdCode{HouseholdCodeRequest: req, Sample: tapproof.LabSampleKey(req.Lab, req.SampleID), Code: code})
}

// fail maps an error to a status. Internal errors are logged and not
// echoed, so nothing internal leaks to the public.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var rej *tapproof.Rejection
	switch {
	case errors.Is(err, tapproof.ErrNotYetAnchored):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, tapproof.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, tapproof.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.As(err, &rej):
		writeError(w, http.StatusBadRequest, rej.Error())
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		// A store that did not answer in time: a NATS server lost and its
		// streams electing new leaders, say. Worth trying again shortly.
		a.cfg.Log.Warn("http: a store did not answer in time", slog.String("path", r.URL.Path), slog.Any("error", err))
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, "temporarily unavailable: a store did not answer in time")
	default:
		a.cfg.Log.Error("http: request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
