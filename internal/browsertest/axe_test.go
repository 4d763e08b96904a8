package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/tapproof/tapproof/internal/browsertest"
)

// serve serves pages by path with a Content-Security-Policy as strict as
// the public pages' (stricter: no script at all), so that the helpers are
// seen to work through it.
func serve(t *testing.T, pages map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const (
	// clean has nothing axe-core objects to.
	clean = `<!doctype html><html lang=en><head><title>t</title></head><body><main><h1>Hi</h1></main></body></html>`
	// unlabelled has an image without alt text and an input without a label.
	unlabelled = `<!doctype html><html lang=en><head><title>t</title></head><body><main><h1>Hi</h1><img src=x><input type=text id=q></main></body></html>`
)

// fakeT records the errors it is given instead of failing; Fatal and Skip
// still end the real test.
type fakeT struct {
	testing.TB
	errors []string
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeT) Error(args ...any) { f.errors = append(f.errors, fmt.Sprint(args...)) }

func ids(vs []browsertest.Violation) []string {
	var s []string
	for _, v := range vs {
		s = append(s, v.ID)
	}
	return s
}

// Axe finds an image without alt text and an input without a label, names
// the elements, and finds nothing on a clean page.
func TestAxe(t *testing.T) {
	ctx := browsertest.Start(t)
	base := serve(t, map[string]string{"/clean": clean, "/unlabelled": unlabelled})

	if vs := browsertest.Axe(t, ctx, base+"/clean"); len(vs) > 0 {
		t.Errorf("the clean page: %s", browsertest.FormatViolations(base+"/clean", vs))
	}

	vs := browsertest.Axe(t, ctx, base+"/unlabelled")
	for _, want := range []struct{ id, target, html string }{
		{"image-alt", "img", "<img"},
		{"label", "#q", `id="q"`},
	} {
		i := slices.IndexFunc(vs, func(v browsertest.Violation) bool { return v.ID == want.id })
		if i < 0 {
			t.Errorf("axe-core found %v on the unlabelled page, want %s among them", ids(vs), want.id)
			continue
		}
		v := vs[i]
		if v.Impact == "" || v.Help == "" || !strings.HasPrefix(v.HelpURL, "https://") || len(v.Nodes) != 1 {
			t.Errorf("%s: want an impact, help, help URL and one element, got %+v", want.id, v)
			continue
		}
		if n := v.Nodes[0]; !slices.Equal(n.Target, []string{want.target}) || !strings.Contains(n.HTML, want.html) || n.Failure == "" {
			t.Errorf("%s: element %+v, want target [%s], HTML with %s and what to fix", want.id, n, want.target, want.html)
		}
	}

	// AxePage checks the page already open, here still the unlabelled one.
	if got := ids(browsertest.AxePage(t, ctx)); !slices.Contains(got, "image-alt") {
		t.Errorf("AxePage found %v on the open unlabelled page, want image-alt among them", got)
	}
}

// CheckAxe fails a page with a violation, with a report naming the rule,
// its help page and the element, and passes a clean page.
func TestCheckAxe(t *testing.T) {
	ctx := browsertest.Start(t)
	base := serve(t, map[string]string{"/clean": clean, "/unlabelled": unlabelled})

	ft := &fakeT{TB: t}
	browsertest.CheckAxe(ft, ctx, base+"/clean")
	if len(ft.errors) > 0 {
		t.Errorf("CheckAxe failed the clean page: %s", ft.errors)
	}

	ft = &fakeT{TB: t}
	browsertest.CheckAxe(ft, ctx, base+"/unlabelled")
	if len(ft.errors) != 1 {
		t.Fatalf("CheckAxe reported %d errors on the unlabelled page, want 1: %q", len(ft.errors), ft.errors)
	}
	report := ft.errors[0]
	for _, want := range []string{base + "/unlabelled", "axe-core " + browsertest.AxeVersion, "image-alt (critical)", "dequeuniversity.com/rules/axe/", `<img src="x">`, "label ("} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
}
