package browsertest_test

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tapproof/tapproof/internal/browsertest"
)

const (
	head = `<!doctype html><html lang=en><head><meta name=viewport content="width=device-width, initial-scale=1"><title>t</title></head>`
	// fluid fits any width.
	fluid = head + `<body><main><h1>Hi</h1><p>A paragraph long enough to wrap on a phone, as text does when nothing holds it wider.</p></main></body></html>`
	// wide has an element 600 px wide, too wide for a phone.
	wide = head + `<body><main><h1>Hi</h1><div class=table style="width:600px">wide</div></main></body></html>`
	// noViewport fits, but says nothing of the viewport, so a phone lays
	// it out 980 px wide.
	noViewport = clean
)

// CheckFits fails a page 600 px wide at 375 px, with the widths and the
// element too wide, and passes a fluid one.
func TestCheckFits(t *testing.T) {
	ctx := browsertest.Start(t)
	base := serve(t, map[string]string{"/fluid": fluid, "/wide": wide, "/no-viewport": noViewport})

	ft := &fakeT{TB: t}
	w := browsertest.CheckFits(ft, ctx, base+"/fluid", 375)
	if len(ft.errors) > 0 || w.Scrolls() || w.Scroll != 375 || w.Inner != 375 || len(w.Wide) > 0 {
		t.Errorf("the fluid page at 375 px: %+v, errors %q; want it to fit", w, ft.errors)
	}

	ft = &fakeT{TB: t}
	w = browsertest.CheckFits(ft, ctx, base+"/wide", 375)
	if !w.Scrolls() || w.Scroll <= 600 || !slices.Equal(w.Wide, []string{"div.table (600 px)"}) {
		t.Errorf("the wide page at 375 px: %+v, want it 600+ px wide because of div.table", w)
	}
	if len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "scrolls sideways") || !strings.Contains(ft.errors[0], "in a 375 px viewport") {
		t.Errorf("CheckFits reported %q on the wide page, want one error with the widths", ft.errors)
	}

	ft = &fakeT{TB: t}
	w = browsertest.CheckFits(ft, ctx, base+"/no-viewport", 375)
	if !w.Scrolls() || w.ViewportMeta || len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "no <meta name=viewport>") {
		t.Errorf("the page without a viewport at 375 px: %+v, errors %q; want it to fail for that", w, ft.errors)
	}
}

// Screenshot writes a PNG 375 px wide of a fluid page, and fails a wide
// page, still keeping its screenshot.
func TestScreenshot(t *testing.T) {
	ctx := browsertest.Start(t)
	dir := filepath.Join(t.TempDir(), "shots") // missing: Screenshot makes it
	t.Setenv("TAPPROOF_ARTIFACTS", dir)
	base := serve(t, map[string]string{"/fluid": fluid, "/wide": wide})

	ft := &fakeT{TB: t}
	path := browsertest.Screenshot(ft, ctx, base+"/fluid", 375, "fluid")
	if want := filepath.Join(dir, "fluid.png"); path != want {
		t.Errorf("Screenshot wrote %s, want %s", path, want)
	}
	if len(ft.errors) > 0 {
		t.Errorf("Screenshot failed the fluid page: %q", ft.errors)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s does not start as a PNG: % x", path, b[:min(len(b), 8)])
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if size := img.Bounds().Size(); size.X != 375 || size.Y < 375 {
		t.Errorf("%s is %v, want 375 px wide and a phone's height", path, size)
	}

	ft = &fakeT{TB: t}
	path = browsertest.Screenshot(ft, ctx, base+"/wide", 375, "wide.png")
	if len(ft.errors) != 1 || !strings.Contains(ft.errors[0], "scrolls sideways") {
		t.Errorf("Screenshot reported %q on the wide page, want that it scrolls sideways", ft.errors)
	}
	if _, err := os.Stat(filepath.Join(dir, "wide.png")); err != nil || path != filepath.Join(dir, "wide.png") {
		t.Errorf("the wide page's screenshot: %s, %v", path, err)
	}
}
