package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Violation is one axe-core rule a page breaks, with the elements that
// break it.
type Violation struct {
	ID      string `json:"id"`      // the rule, such as "image-alt"
	Impact  string `json:"impact"`  // "minor", "moderate", "serious" or "critical"
	Help    string `json:"help"`    // what the rule asks, in a sentence
	HelpURL string `json:"helpUrl"` // the rule's page at Deque
	Nodes   []Node `json:"nodes"`
}

// Node is an element that breaks a rule.
type Node struct {
	// Target is the CSS selector of the element, one per frame from the
	// top document in; a selector inside shadow DOM has its hosts'
	// selectors before it, joined with " >>> ".
	Target  []string `json:"target"`
	HTML    string   `json:"html"`    // the element's opening tag, shortened by axe
	Failure string   `json:"failure"` // what to fix, as axe's failureSummary
}

// String is v over several lines: the rule, its page and each element,
// with what to fix about it.
func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s\n    %s", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %s  %s", strings.Join(n.Target, " | "), n.HTML)
		for line := range strings.SplitSeq(strings.TrimSpace(n.Failure), "\n") {
			fmt.Fprintf(&b, "\n        %s", strings.TrimSpace(line))
		}
	}
	return b.String()
}

// axeRun is the JavaScript that runs axe-core on the document with the
// rules tagged WCAG 2.0, 2.1 and 2.2 A and AA (axe-core 4.14 has no
// wcag22a rule) and best-practice, and resolves to its violations, shaped
// as []Violation.
const axeRun = `axe.run(document, {
	runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
	resultTypes: ["violations"],
}).then(r => r.violations.map(v => ({
	id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
	nodes: v.nodes.map(n => ({
		target: n.target.map(s => Array.isArray(s) ? s.join(" >>> ") : String(s)),
		html: n.html, failure: n.failureSummary || "",
	})),
})))`

// Axe opens url in ctx, waits for its body and returns the axe-core
// violations on it, as AxePage.
func Axe(t testing.TB, ctx context.Context, url string) []Violation {
	t.Helper()
	Run(t, ctx, "open "+url, chromedp.Navigate(url), chromedp.WaitReady("body"))
	return AxePage(t, ctx)
}

// AxePage runs axe-core AxeVersion on the page open in ctx with the WCAG
// 2.x A and AA rules and the best practices, and returns the rules it
// breaks. axe-core is evaluated through the DevTools protocol, which the
// page's Content-Security-Policy does not restrict. Without npm to install
// axe-core, or if installing fails, AxePage fails t in CI (CI=true) and
// skips it elsewhere.
func AxePage(t testing.TB, ctx context.Context) []Violation {
	t.Helper()
	src, err := axeScript()
	if err != nil {
		unavailable(t, fmt.Sprintf("axe-core %s: %v", AxeVersion, err))
	}
	var vs []Violation
	run(t, ctx, time.Minute, "axe-core",
		chromedp.Evaluate(src+"\n;void 0", nil),
		chromedp.Evaluate(axeRun, &vs, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}),
	)
	return vs
}

// CheckAxe opens url in ctx and fails t, listing every violation, unless
// axe-core finds none (see AxePage).
func CheckAxe(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if vs := Axe(t, ctx, url); len(vs) > 0 {
		t.Errorf("%s", FormatViolations(url, vs))
	}
}

// FormatViolations is a report of the violations vs found on url, one
// rule after another.
func FormatViolations(url string, vs []Violation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "axe-core %s: %d violation(s) on %s:", AxeVersion, len(vs), url)
	for _, v := range vs {
		b.WriteString("\n  ")
		b.WriteString(strings.ReplaceAll(v.String(), "\n", "\n  "))
	}
	return b.String()
}
