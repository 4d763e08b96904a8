package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tapproof/tapproof/internal/browsertest"
)

func serve(t *testing.T, pages map[string]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		fmt.Fprint(w, pages[r.URL.Path])
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

const clean = `<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>Hi</h1><p>Fine.</p></main></body></html>`

// Axe finds what is wrong, and nothing on a page with nothing wrong.
func TestAxe(t *testing.T) {
	ctx := browsertest.Start(t)
	base := serve(t, map[string]string{
		"/clean": clean,
		"/bad":   `<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>Hi</h1><img src="x.png"><input type="text"></main></body></html>`,
	})
	browsertest.CheckAxe(t, ctx, base+"/clean")
	browsertest.Run(t, ctx, "open the bad page", navigate(base+"/bad"))
	var ids []string
	for _, v := range browsertest.Axe(t, ctx) {
		ids = append(ids, v.ID)
	}
	for _, want := range []string{"image-alt", "label"} {
		if !slices.Contains(ids, want) {
			t.Errorf("axe found %v, want %s among them", ids, want)
		}
	}
}

// Screenshot keeps a PNG of the width asked for, and fails a page wider
// than the viewport.
func TestScreenshot(t *testing.T) {
	ctx := browsertest.Start(t)
	t.Setenv("TAPPROOF_ARTIFACTS", t.TempDir())
	base := serve(t, map[string]string{
		"/fluid": clean,
		"/wide":  `<!doctype html><html lang="en"><head><title>t</title></head><body><div style="width:600px">wide</div></body></html>`,
	})
	path := browsertest.Screenshot(t, ctx, base+"/fluid", 375, "fluid")
	if b, err := os.ReadFile(path); err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Errorf("%s is no PNG: %v", path, err)
	}
	ft := &fakeT{TB: t}
	browsertest.Screenshot(ft, ctx, base+"/wide", 375, "wide")
	if !ft.failed {
		t.Error("a page 600 px wide passed at 375 px")
	}
}

// fakeT records a failure instead of failing.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }

func navigate(url string) chromedp.Action { return chromedp.Navigate(url) }
