package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core release the accessibility checks run, from
// the npm registry, installed once into the cache (TAPPROOF_CACHE, else
// the user's cache directory).
const AxeVersion = "4.14.1"

// AxeTags are the rules Axe runs: WCAG 2.x A and AA, and axe's best
// practices.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"}

// Violation is one rule a page breaks, with the elements that break it.
type Violation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s <%s>", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %v %s", n.Target, n.HTML)
	}
	return b.String()
}

var axeScript = sync.OnceValues(func() (string, error) {
	cache := os.Getenv("TAPPROOF_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(dir, "tapproof")
	}
	dir := filepath.Join(cache, "npm", "axe-core-"+AxeVersion)
	file := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if b, err := os.ReadFile(file); err == nil {
		return string(b), nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is missing (Debian: apt-get install -y npm): %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "axe-core-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(filepath.Dir(dir), "axe-core-"); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("npm", "install", "--prefix", tmp, "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "axe-core@"+AxeVersion).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("npm install axe-core@%s: %v\n%s", AxeVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, statErr := os.Stat(file); statErr != nil {
			return "", err
		}
	}
	b, err := os.ReadFile(file)
	return string(b), err
})

// Axe runs axe-core on the page open in ctx and returns its violations.
// Without npm it fails t in CI (CI=true) and skips it elsewhere. The script
// is evaluated through the DevTools protocol, which no page's
// Content-Security-Policy restricts.
func Axe(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	src, err := axeScript()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	tags, _ := json.Marshal(AxeTags)
	var raw string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(src, nil),
		chromedp.Evaluate(`axe.run(document, {runOnly: {type: "tag", values: `+string(tags)+`}}).then(r => JSON.stringify(r.violations))`, &raw,
			func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }),
	)
	if err != nil {
		t.Fatalf("axe: %v", err)
	}
	var vs []Violation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("axe: %v", err)
	}
	return vs
}

// CheckAxe opens url and fails t with every axe-core violation on it.
func CheckAxe(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Run(ctx, chromedp.Navigate(url), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	for _, v := range Axe(t, ctx) {
		t.Errorf("%s: %s", url, v)
	}
}

// Artifacts is where screenshots are kept: TAPPROOF_ARTIFACTS, else
// .artifacts/screenshots at the repository's root.
func Artifacts(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("TAPPROOF_ARTIFACTS")
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				dir = filepath.Join(d, ".artifacts", "screenshots")
				break
			}
			if filepath.Dir(d) == d {
				dir = filepath.Join(wd, ".artifacts", "screenshots")
				break
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot opens url in a viewport width CSS pixels wide, fails t if
// the page scrolls sideways at that width, and writes a full-page PNG
// named name.png into Artifacts, returning its path.
func Screenshot(t testing.TB, ctx context.Context, url string, width int, name string) string {
	t.Helper()
	var buf []byte
	var scroll, inner int
	if err := chromedp.Run(ctx,
		chromedp.EmulateViewport(int64(width), 800),
		chromedp.Navigate(url),
		chromedp.WaitReady("body"),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scroll),
		chromedp.Evaluate(`window.innerWidth`, &inner),
		chromedp.FullScreenshot(&buf, 100),
	); err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	if scroll > inner {
		t.Errorf("%s is %d px wide in a %d px viewport: it scrolls sideways", url, scroll, inner)
	}
	img, err := png.Decode(strings.NewReader(string(buf)))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", url, err)
	}
	if img.Bounds().Dx() != width {
		t.Errorf("screenshot of %s is %d px wide, want %d", url, img.Bounds().Dx(), width)
	}
	path := filepath.Join(Artifacts(t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
