package public_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/internal/browsertest"
	"github.com/tapproof/tapproof/public"
)

// december is the pages' clock: 90 days back crosses 1 Nov 2027, when the
// federal lead action level drops from 15 to 10 µg/L.
var december = time.Date(2027, time.December, 15, 12, 0, 0, 0, time.UTC)

// newPagesEnv is the status pages in a real browser with 90 days of seeded
// history, at the clock december.
func newPagesEnv(t *testing.T) *browserEnv {
	// A sensor peak each day from 17 Sep to 15 Dec 2027 between 6 and 13
	// µg/L, and two lab results of the home: 12 µg/L before 1 Nov and after,
	// which the page does not show.
	var history []tapproof.Reading
	from := december.Truncate(24*time.Hour).AddDate(0, 0, -(public.HistoryDays - 1))
	for d := range public.HistoryDays {
		r := lead(uint64(100+d), float64(6+d%8))
		r.SampledAt = from.AddDate(0, 0, d)
		history = append(history, r)
	}
	for i, at := range []time.Time{time.Date(2027, time.October, 12, 9, 0, 0, 0, time.UTC), time.Date(2027, time.November, 20, 9, 0, 0, 0, time.UTC)} {
		history = append(history, tapproof.LabSample{Lab: "state-lab", Utility: "springfield", Site: "elm-st-12", Analyte: tapproof.Lead,
			Value: 12, Unit: tapproof.MicrogramsPerLiter, CollectedAt: at}.Reading(uint64(500+i)))
	}
	rs := memReadings{"springfield/elm-st-12": append(history, lead(1, 3.2))}
	return newBrowserEnv(t, rs, func() time.Time { return december })
}

// status opens path and returns the status class, its sentence and the
// guidance's text.
func (e *browserEnv) status(t *testing.T, path string) (class, sentence, guidance string) {
	t.Helper()
	browsertest.Run(t, e.ctx, "open "+path,
		chromedp.Navigate(e.base+path),
		chromedp.WaitVisible(`#status`),
		chromedp.AttributeValue(`#status`, "data-status", &class, nil),
		chromedp.Text(`#status`, &sentence),
		chromedp.Text(`#guidance`, &guidance),
	)
	return class, sentence, guidance
}

// TestStatusSentences: the sentence and the guidance for no alert and for
// each of the public alert classes, in the order a day could bring them. A
// home's own lab result, in between, changes nothing on the page (it goes
// to that home), which says so where it explains lab results.
func TestStatusSentences(t *testing.T) {
	e := newPagesEnv(t)
	bg := context.Background()
	individual := alertAt(20, 18)
	individual.ID, individual.Class, individual.Device, individual.Seq = tapproof.IndividualAlertID("springfield", "state-lab", 20), tapproof.IndividualCompliance, tapproof.LabDevice("springfield", "state-lab"), 20
	individual.Sample = "state-lab/L-20"
	system := alertAt(30, 17)
	system.ID, system.Class, system.Site, system.Device, system.Seq = tapproof.SystemExceedanceID("springfield", tapproof.Lead, "2027H2"), tapproof.SystemExceedance, "", "", 0
	for _, step := range []struct {
		publish  *tapproof.Alert
		class    string
		sentence []string
		guidance []string
		explain  string
		absent   string // not in the open alerts
	}{
		{nil, "none", []string{"No open alert"}, []string{"lead service line", "cold tap"}, "", ""},
		{ptr(alertAt(2, 22)), "screening", []string{"A sensor measured high lead at Elm Street school", "lab sample will confirm"},
			[]string{"Until the lab result is known", "NSF/ANSI Standard 53", "baby formula", "Use only cold water", "run the cold tap", "Do not boil"},
			"Sensors warn early; they are not certified lab results", ""},
		{&individual, "screening", []string{"A sensor measured high lead at Elm Street school"},
			[]string{"Until the lab result is known", "NSF/ANSI Standard 53"}, "Sensors warn early", "18 µg/L"},
		{&system, "system", []string{"springfield exceeded the lead action level", "more than 1 in 10 homes", "15 µg/L (ppb)"},
			[]string{"within 24 hours", "baby formula", "Do not boil"}, "the 90th percentile is above it", ""},
	} {
		if step.publish != nil {
			if err := e.store.Publish(bg, *step.publish); err != nil {
				t.Fatal(err)
			}
		}
		class, sentence, guidance := e.status(t, "/sites/springfield/elm-st-12")
		if class != step.class {
			t.Errorf("%s: status class %q: %q", step.class, class, sentence)
		}
		for _, w := range step.sentence {
			if !strings.Contains(sentence, w) {
				t.Errorf("%s: the sentence %q lacks %q", step.class, sentence, w)
			}
		}
		for _, w := range step.guidance {
			if !strings.Contains(guidance, w) {
				t.Errorf("%s: the guidance %q lacks %q", step.class, guidance, w)
			}
		}
		if step.explain != "" {
			var alertsText string
			browsertest.Run(t, e.ctx, "read the alerts", chromedp.Text(`#open-alerts`, &alertsText))
			if !strings.Contains(alertsText, step.explain) {
				t.Errorf("%s: the alert is not explained (%q):\n%s", step.class, step.explain, alertsText)
			}
			if step.absent != "" && strings.Contains(alertsText, step.absent) {
				t.Errorf("%s: the open alerts show the home's own result (%q):\n%s", step.class, step.absent, alertsText)
			}
		}
	}
	var private string
	browsertest.Run(t, e.ctx, "read where lab results go", chromedp.Text(`#lab-result-private`, &private))
	if !strings.Contains(private, "it is sent to that home") {
		t.Errorf("the site page does not say a home's own result goes to that home: %q", private)
	}
	// The index says the same of the utility.
	if class, _, _ := e.status(t, "/"); class != "system" {
		t.Errorf("the index's status is %q, want system", class)
	}
}

func ptr[T any](v T) *T { return &v }

// TestHistoryChart: the chart of a site's last 90 days, its action level
// line stepping down on 1 Nov 2027, each point linking its proof bundle,
// and the table behind it.
func TestHistoryChart(t *testing.T) {
	e := newPagesEnv(t)
	var path, change, title string
	var points, labs, rows, links int
	browsertest.Run(t, e.ctx, "open the site page",
		chromedp.Navigate(e.base+"/sites/springfield/elm-st-12"),
		chromedp.WaitVisible(`#history`),
		chromedp.AttributeValue(`#level-line`, "d", &path, nil),
		chromedp.Text(`.level-change`, &change),
		chromedp.TextContent(`#history-title`, &title, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#history .point').length`, &points),
		chromedp.Evaluate(`document.querySelectorAll('#history .point.lab').length`, &labs),
		chromedp.Evaluate(`document.querySelectorAll('#history-table tbody tr').length`, &rows),
		chromedp.Evaluate(`[...document.querySelectorAll('#history a[href]')].filter(a => /\/bundle$/.test(a.getAttribute('href'))).length`, &links),
	)
	if points != public.HistoryDays || labs != 0 || rows != points || links != points {
		t.Errorf("%d points (%d lab), %d rows, %d proof links; want %d points, none a lab result, a row and a proof link each", points, labs, rows, links, public.HistoryDays)
	}
	// One step, down: M x y(15) H x(1 Nov) V y(10) H end.
	var x0, y15, xStep, y10, xEnd float64
	if n, err := fmt.Sscanf(path, "M%f %f H%f V%f H%f", &x0, &y15, &xStep, &y10, &xEnd); err != nil || n != 5 || y10 <= y15 {
		t.Errorf("level line %q: want one step down", path)
	}
	if frac := (xStep - x0) / (xEnd - x0); frac < 0.45 || frac > 0.55 { // 1 Nov is day 45 of 90
		t.Errorf("the level steps at %.2f of the chart, want about 0.5 (1 Nov 2027)", frac)
	}
	if !strings.Contains(change, "15 µg/L (ppb) to 10 µg/L (ppb) on 1 November 2027") {
		t.Errorf("level change = %q", change)
	}
	// Daily peaks of 13 µg/L: below the level before 1 Nov, above after;
	// on the days of the home's lab results, the day's peak alone.
	var table string
	browsertest.Run(t, e.ctx, "read the table", chromedp.Evaluate(
		`[...document.querySelectorAll('#history-table tr')].map(r => [...r.cells].map(c => c.textContent).join('|')).join('\n')`, &table))
	if !strings.Contains(table, "2 October 2027|sensor, highest of the day|13 µg/L (ppb)|15 µg/L (ppb)|proof") ||
		!strings.Contains(table, "3 November 2027|sensor, highest of the day|13 µg/L (ppb) (above the action level)|10 µg/L (ppb)|proof") ||
		strings.Count(table, "12 October 2027|") != 1 || strings.Count(table, "20 November 2027|") != 1 {
		t.Errorf("history table: want the peaks judged by the level of their day, and no lab result:\n%s", table)
	}
	if !strings.Contains(title, "17 September 2027 to 15 December 2027") {
		t.Errorf("chart title %q", title)
	}
}

// TestSpanish: a page in Spanish from the browser's language and from the
// switch, and a Spanish confirmation and notice through real SMTP, with the
// notice record naming the language.
func TestSpanish(t *testing.T) {
	e := newPagesEnv(t)
	var lang, sentence string
	browsertest.Run(t, e.ctx, "switch to Spanish",
		chromedp.Navigate(e.base+"/sites/springfield/elm-st-12"),
		chromedp.WaitVisible(`nav a[hreflang="es"]`),
		browsertest.Follow(`nav a[hreflang="es"]`),
		chromedp.WaitVisible(`html[lang="es"] #status`),
		chromedp.AttributeValue(`html`, "lang", &lang, nil),
		chromedp.Text(`#status`, &sentence),
	)
	if lang != "es" || !strings.Contains(sentence, "No hay ninguna alerta abierta") {
		t.Errorf("after the switch: lang %q, status %q", lang, sentence)
	}
	// The choice sticks: the next page is Spanish too.
	var heading string
	browsertest.Run(t, e.ctx, "open the index", chromedp.Navigate(e.base+"/"), chromedp.WaitVisible(`#status`), chromedp.Text(`#guidance-heading`, &heading))
	if heading != "Qué hacer ahora" {
		t.Errorf("the index after the switch says %q", heading)
	}

	const resident = "vecina@example.org"
	var text string
	browsertest.Run(t, e.ctx, "subscribe in Spanish",
		chromedp.Navigate(e.base+"/sites/springfield/elm-st-12"),
		chromedp.WaitVisible(`#address`),
		chromedp.SendKeys(`#address`, resident),
		browsertest.Follow(`#subscribe-button`),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	if !strings.Contains(text, "Revise su correo") {
		t.Fatalf("after subscribing the page says %q", text)
	}
	confirm := waitMail(t, e.mp, resident, "Confirme")
	browsertest.Run(t, e.ctx, "confirm", chromedp.Navigate(browsertest.ConfirmLink(t, e.base, confirm.Text)), chromedp.WaitVisible(`#message`), chromedp.Text(`#message`, &text))
	if !strings.Contains(text, "A partir de ahora recibirá") {
		t.Fatalf("the confirmation page says %q", text)
	}
	if err := e.store.Publish(context.Background(), alertAt(2, 22)); err != nil {
		t.Fatal(err)
	}
	mail := waitMail(t, e.mp, resident, "Alerta sobre el agua")
	for _, want := range []string{"22 µg/L (ppb)", notice.HealthEffectsIn("es", tapproof.Lead), "traducción", "Para darse de baja: " + e.base + "/unsubscribe?token="} {
		if !strings.Contains(mail.Text, want) {
			t.Errorf("the Spanish notice lacks %q:\n%s", want, mail.Text)
		}
	}
	recs := e.nlog.all()
	if len(recs) != 1 {
		t.Fatalf("notice records = %+v, want one", recs)
	}
	var es *tapproof.NoticeText
	for i, x := range recs[0].Texts {
		if x.Language == "es" {
			es = &recs[0].Texts[i]
		}
	}
	if es == nil || es.Recipients != 1 || es.Template != notice.TemplateScreeningAlert || len(es.TextSHA256) != 64 || recs[0].Texts[0].Language != "en" || recs[0].Texts[0].Recipients != 0 {
		t.Errorf("the notice record's texts = %+v, want English (0 recipients) and Spanish (1)", recs[0].Texts)
	}
}

// TestAccessibleAndSmall: the index, a site page (with an open alert and
// its chart), the subscribe flow and the confirmation page pass axe-core
// with no violation, in English and in Spanish, and fit a 375 px phone
// without scrolling sideways; a screenshot of each is kept
// (browsertest.Artifacts: .artifacts/screenshots).
func TestAccessibleAndSmall(t *testing.T) {
	e := newPagesEnv(t)
	if err := e.store.Publish(context.Background(), alertAt(2, 22)); err != nil {
		t.Fatal(err)
	}
	const resident = "axe@example.org"
	var text string
	browsertest.Run(t, e.ctx, "subscribe",
		chromedp.Navigate(e.base+"/subscribe"),
		chromedp.WaitVisible(`#address`),
		chromedp.SendKeys(`#address`, resident),
		browsertest.Follow(`#subscribe-button`),
		chromedp.WaitVisible(`#message`),
		chromedp.Text(`#message`, &text),
	)
	confirm := waitMail(t, e.mp, resident, "Confirm")
	confirmURL := browsertest.ConfirmLink(t, e.base, confirm.Text)
	pages := []struct{ name, path string }{
		{"index", "/"},
		{"site", "/sites/springfield/elm-st-12"},
		{"subscribe", "/subscribe"},
		{"confirmation", strings.TrimPrefix(confirmURL, e.base)},
	}
	for _, lang := range []string{"en", "es"} {
		for _, p := range pages {
			url := e.base + p.path
			if strings.Contains(url, "?") {
				url += "&lang=" + lang
			} else {
				url += "?lang=" + lang
			}
			browsertest.CheckAxe(t, e.ctx, url)
			path := browsertest.Screenshot(t, e.ctx, url, 375, "375-"+lang+"-"+p.name)
			t.Logf("%s (%s) at 375 px: %s", p.name, lang, path)
		}
	}
}
