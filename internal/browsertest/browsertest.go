// Package browsertest runs headless Chromium (Debian's chromium) for tests
// that drive tapproof's public pages as a resident would, with chromedp.
//
// Start opens the browser, Run runs actions in it, Follow follows a link or
// submits a form, FindSite and Subscribe follow a resident's journeys, and
// ConfirmLink finds the link a confirmation email carries. Besides them:
//
//   - Axe, AxePage and CheckAxe run axe-core (AxeVersion, installed once
//     from the npm registry into $TAPPROOF_CACHE, else the user's cache
//     directory, and checked against a pinned SHA-512) with the WCAG 2.x
//     A and AA rules and axe's best practices, and report each violation
//     with the elements that break it.
//   - MeasureWidths and CheckFits load a page at a phone's width and
//     report whether it scrolls sideways there; Screenshot does the same
//     and keeps a full-page PNG in Artifacts
//     ($TAPPROOF_ARTIFACTS, else .artifacts/screenshots at the
//     repository's root), where it outlives the test.
//
// What a test needs but the machine lacks (Chromium, npm) fails the test in
// CI (CI=true) and skips it elsewhere.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapproof/tapproof/internal/localstack"
)

// Start starts headless Chromium for t and returns its browser context,
// closed when t ends. Without Chromium the test fails in CI (CI=true) and
// is skipped elsewhere.
func Start(t testing.TB) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		unavailable(t, "chromium is missing (Debian: apt-get install -y chromium chromium-driver)")
	}
	// Not t.TempDir: Chromium's helpers may still write for a moment after
	// the browser exits, and TempDir's removal then fails the test.
	profile, err := os.MkdirTemp("", "chromium-profile-")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(profile) != nil && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	return ctx
}

// unavailable ends t for want of a program on this machine: it fails t in
// CI (CI=true), where the program must be installed, and skips t elsewhere.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// Run runs browser actions with a deadline of 20 s; on failure it fails t
// with what and the page's HTML.
func Run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	run(t, ctx, 20*time.Second, what, actions...)
}

// run is Run with a deadline of timeout.
func run(t testing.TB, ctx context.Context, timeout time.Duration, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var html string
		_ = chromedp.Run(context.WithoutCancel(ctx), chromedp.OuterHTML("html", &html))
		t.Fatalf("%s: %v\npage:\n%s", what, err, html)
	}
}

// Follow clicks sel, a link or a form's button, and waits until the page it
// leads to has loaded. After a plain Click the next query can still reach
// the page being left, or a node of it that navigation has just removed
// ("No node with given id found"); after Follow it reads the new page.
func Follow(sel string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
		return err
	})
}

// FindSite opens the status page at base as a resident would, follows the
// link to site of utility and returns the text of its readings table.
func FindSite(t *testing.T, ctx context.Context, base, utility, site string) string {
	t.Helper()
	link := fmt.Sprintf(`a.site[href$="/sites/%s/%s"]`, utility, site)
	var text string
	Run(t, ctx, "find the site on the status page",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(link),
		Follow(link),
		chromedp.WaitVisible(`#readings`),
		chromedp.Text(`#readings`, &text),
	)
	return text
}

// ConfirmLink returns the link to base's confirmation page in a
// confirmation email's text; it fails the test if there is none.
func ConfirmLink(t *testing.T, base, text string) string {
	t.Helper()
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/confirm\?token=[0-9a-f]{64}`).FindString(text)
	if link == "" {
		t.Fatalf("confirmation email has no link to %s/confirm:\n%s", base, text)
	}
	return link
}

// Subscribe subscribes address with the form of the open page, then
// confirms from the email mp receives, failing t unless each page says it
// worked.
func Subscribe(t *testing.T, ctx context.Context, mp *localstack.Mailpit, base, address string) {
	t.Helper()
	var text string
	Run(t, ctx, "subscribe",
		chromedp.SendKeys(`#address`, address),
		Follow(`#subscribe-button`),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	if !strings.Contains(text, "Check your inbox") {
		t.Fatalf("after subscribing the page says %q", text)
	}
	mailCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	confirm, err := mp.Wait(mailCtx, address, "Confirm")
	if err != nil {
		t.Fatal(err)
	}
	link := ConfirmLink(t, base, confirm.Text)
	Run(t, ctx, "confirm",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	if !strings.Contains(text, "You will now receive") {
		t.Fatalf("confirmation page says %q", text)
	}
}
