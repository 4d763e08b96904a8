package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// Widths is how wide a page is in a phone's viewport, in CSS pixels.
type Widths struct {
	Viewport int `json:"viewport"` // the viewport's width, as asked for
	// Inner is window.innerWidth, the layout viewport, which a phone
	// widens to fit a page wider than itself (980 px for a page without
	// <meta name=viewport>).
	Inner        int      `json:"inner"`
	Scroll       int      `json:"scroll"`       // document.documentElement.scrollWidth, the page's width
	ViewportMeta bool     `json:"viewportMeta"` // whether the page has <meta name=viewport>
	Wide         []string `json:"wide"`         // up to 5 outermost elements reaching past Viewport, with their widths
}

// Scrolls reports whether the page is wider than the viewport, so that a
// phone scrolls it sideways (or shrinks it).
func (w Widths) Scrolls() bool { return w.Scroll > w.Viewport || w.Scroll > w.Inner }

func (w Widths) String() string {
	s := fmt.Sprintf("scrollWidth %d px, innerWidth %d px in a %d px viewport", w.Scroll, w.Inner, w.Viewport)
	if w.Scrolls() {
		s += ": the page scrolls sideways"
	}
	if !w.ViewportMeta {
		s += "; no <meta name=viewport>, so a phone lays it out 980 px wide"
	}
	if len(w.Wide) > 0 {
		s += "; too wide: " + strings.Join(w.Wide, ", ")
	}
	return s
}

// measureJS measures Widths at the viewport width %d.
const measureJS = `(() => {
	const width = %d;
	const name = e => e.localName + (e.id ? "#" + e.id : "") + [...e.classList].map(c => "." + c).join("");
	const past = e => e !== null && e.getBoundingClientRect().right > width + 0.5;
	const wide = [];
	for (const e of document.querySelectorAll("*")) {
		if (wide.length < 5 && past(e) && !past(e.parentElement)) {
			wide.push(name(e) + " (" + Math.round(e.getBoundingClientRect().width) + " px)");
		}
	}
	return {
		viewport: width,
		inner: window.innerWidth,
		scroll: document.documentElement.scrollWidth,
		viewportMeta: document.querySelector("meta[name=viewport]") !== null,
		wide,
	};
})()`

// phone emulates a phone held upright whose screen is width CSS pixels
// wide (and 16:9), at one device pixel per CSS pixel, with touch.
func phone(width int) chromedp.Action {
	return chromedp.EmulateViewport(int64(width), int64(width*16/9),
		chromedp.EmulateScale(1), chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
}

// MeasureWidths opens url in ctx on a phone width CSS pixels wide and
// returns how wide the page is there. The viewport is reset afterwards.
func MeasureWidths(t testing.TB, ctx context.Context, url string, width int) Widths {
	t.Helper()
	var w Widths
	Run(t, ctx, fmt.Sprintf("measure %s at %d px", url, width),
		phone(width),
		chromedp.Navigate(url),
		chromedp.WaitReady("body"),
		chromedp.Evaluate(fmt.Sprintf(measureJS, width), &w),
		chromedp.ResetViewport(),
	)
	return w
}

// CheckFits fails t, with the widths measured, if the page at url scrolls
// sideways on a phone width CSS pixels wide, and returns them.
func CheckFits(t testing.TB, ctx context.Context, url string, width int) Widths {
	t.Helper()
	w := MeasureWidths(t, ctx, url, width)
	if w.Scrolls() {
		t.Errorf("%s at %d px: %s", url, width, w)
	}
	return w
}

// Screenshot opens url in ctx on a phone width CSS pixels wide, writes a
// full-page PNG of it to name.png in Artifacts and returns its path. Like
// CheckFits it fails t if the page scrolls sideways at that width. The
// viewport is reset afterwards. name is a file name, without directories.
func Screenshot(t testing.TB, ctx context.Context, url string, width int, name string) string {
	t.Helper()
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		t.Fatalf("screenshot name %q: want a file name without directories", name)
	}
	if !strings.HasSuffix(name, ".png") {
		name += ".png"
	}
	var w Widths
	var buf []byte
	Run(t, ctx, fmt.Sprintf("screenshot of %s at %d px", url, width),
		phone(width),
		chromedp.Navigate(url),
		chromedp.WaitReady("body"),
		chromedp.Evaluate(fmt.Sprintf(measureJS, width), &w),
		chromedp.FullScreenshot(&buf, 100), // quality 100 is PNG
		chromedp.ResetViewport(),
	)
	cfg, err := png.DecodeConfig(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	path := filepath.Join(Artifacts(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	switch {
	case w.Scrolls():
		t.Errorf("%s at %d px: %s (screenshot %s)", url, width, w, path)
	case cfg.Width != width:
		t.Errorf("screenshot of %s at %d px is %d px wide (%s)", url, width, cfg.Width, path)
	}
	return path
}

// Artifacts is the directory, created if missing, where Screenshot keeps
// its PNGs: $TAPPROOF_ARTIFACTS, else .artifacts/screenshots in the
// repository's root (the nearest directory with a go.mod above the working
// directory). Unlike t.TempDir it outlives the test.
func Artifacts(t testing.TB) string {
	t.Helper()
	dir, err := artifactsDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	return dir
}

func artifactsDir() (string, error) {
	if dir := os.Getenv("TAPPROOF_ARTIFACTS"); dir != "" {
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("artifacts: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".artifacts", "screenshots"), nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("artifacts: no go.mod above %s; set TAPPROOF_ARTIFACTS", wd)
		}
	}
}
