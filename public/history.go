package public

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts/notice"
	"github.com/tapproof/tapproof/locale"
)

// HistoryDays is how far back a site's page shows its history.
const HistoryDays = 90

// HistoryTTL is how long a site's history, once read, serves its page. A
// chart of daily peaks barely changes in a minute, and a crowd reloading a
// site's page during an alert then costs InfluxDB one 90-day query a
// minute, not one per view; concurrent views wait for the same query.
const HistoryTTL = time.Minute

// historyCache keeps each site's history for HistoryTTL.
type historyCache struct {
	group singleflight.Group
	mu    sync.Mutex
	sites map[string]cachedHistory // by utility/site; only sites that exist
}

type cachedHistory struct {
	at, from time.Time
	readings []tapproof.Reading // shared: read only
}

// history returns Readings.History of utility's site from from to now,
// as read at most HistoryTTL ago for the same from.
func (s *server) history(ctx context.Context, utility, site string, from, now time.Time) ([]tapproof.Reading, error) {
	key := utility + "/" + site
	s.hist.mu.Lock()
	c, ok := s.hist.sites[key]
	s.hist.mu.Unlock()
	if ok && c.from.Equal(from) && now.Sub(c.at) < HistoryTTL {
		return c.readings, nil
	}
	v, err, _ := s.hist.group.Do(key, func() (any, error) {
		// Not the first visitor's context alone: the others wait on it too.
		rs, err := s.cfg.Readings.History(context.WithoutCancel(ctx), utility, site, from, now)
		if err != nil {
			return nil, err
		}
		s.hist.mu.Lock()
		if s.hist.sites == nil {
			s.hist.sites = map[string]cachedHistory{}
		}
		s.hist.sites[key] = cachedHistory{at: now, from: from, readings: rs}
		s.hist.mu.Unlock()
		return rs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]tapproof.Reading), nil
}

// history is a site's chart and the table behind it.
type history struct {
	Caption        string
	Width, Height  float64
	Left, Bottom   float64 // the plot area's left edge and baseline
	Points         []point
	LevelPath      string // the action level in force each day, as an SVG path
	YTicks, XTicks []tick
	Changes        []string // sentences: the action level changed on a day
	Rows           []historyRow
}

type point struct {
	X, Y        float64
	Above       bool
	Href, Label string
}

type tick struct {
	At    float64
	Label string
}

type historyRow struct {
	Day, Kind, Value, Level, Href string
	Above                         bool
}

// sensorReadings returns the readings of rs that sensors made, leaving out
// lab results, in a new slice (rs may be a cached history, shared).
func sensorReadings(rs []tapproof.Reading) []tapproof.Reading {
	out := make([]tapproof.Reading, 0, len(rs))
	for _, r := range rs {
		if r.Method != tapproof.Lab {
			out = append(out, r)
		}
	}
	return out
}

// newHistory lays out readings (daily sensor peaks, oldest first) from
// from to to, against the lead action level rules give each day.
func newHistory(l *locale.Localizer, links notice.Links, rules tapproof.RuleBook, utility, place string, readings []tapproof.Reading, from, to time.Time) *history {
	const w, h, left, right, top, bottom = 720.0, 260.0, 48.0, 12.0, 12.0, 228.0
	days := int(to.Sub(from).Hours()/24) + 1
	level := func(t time.Time) float64 {
		r, ok := rules.At(utility, tapproof.Lead, t)
		if !ok {
			return 0
		}
		return r.Level
	}
	ymax := 0.0
	for d := range days {
		ymax = max(ymax, level(from.AddDate(0, 0, d))*1.5)
	}
	for _, r := range readings {
		ymax = max(ymax, r.Value*1.1)
	}
	if ymax <= 0 {
		ymax = 1
	}
	x := func(t time.Time) float64 {
		return left + (w-left-right)*t.Sub(from).Hours()/(to.Sub(from).Hours())
	}
	y := func(v float64) float64 { return bottom - (bottom-top)*v/ymax }
	hs := &history{Width: w, Height: h, Left: left, Bottom: bottom,
		Caption: l.T("history_chart", "Place", place, "From", l.Date(from), "To", l.Date(to))}

	// The level: a step at each day where it changes.
	prev := -1.0
	for d := range days + 1 {
		day := from.AddDate(0, 0, d)
		if day.After(to) {
			day = to
		}
		lv := level(day)
		switch {
		case prev < 0:
			hs.LevelPath = fmt.Sprintf("M%.1f %.1f", x(day), y(lv))
		case lv != prev:
			hs.LevelPath += fmt.Sprintf(" H%.1f V%.1f", x(day), y(lv))
			hs.Changes = append(hs.Changes, l.T("history_level_changes", "From", notice.Quantity(prev, tapproof.MicrogramsPerLiter),
				"To", notice.Quantity(lv, tapproof.MicrogramsPerLiter), "Day", l.Date(day)))
		}
		prev = lv
	}
	hs.LevelPath += fmt.Sprintf(" H%.1f", x(to))

	for _, v := range []float64{0, ymax / 2, ymax} {
		hs.YTicks = append(hs.YTicks, tick{At: y(v), Label: strconv.FormatFloat(float64(int(v*10))/10, 'f', -1, 64)})
	}
	for _, t := range []time.Time{from, from.Add(to.Sub(from) / 2), to} {
		hs.XTicks = append(hs.XTicks, tick{At: x(t), Label: l.Date(t)})
	}
	for _, r := range readings {
		lv := level(r.SampledAt)
		kind := l.T("history_sensor")
		href := links.ReadingProof(r)
		value := notice.Quantity(r.Value, tapproof.MicrogramsPerLiter)
		above := lv > 0 && r.Value > lv
		day := l.Date(r.SampledAt)
		label := day + ": " + kind + ", " + value
		if above {
			label += ", " + l.T("history_above")
		}
		hs.Points = append(hs.Points, point{X: x(r.SampledAt), Y: y(r.Value), Above: above, Href: href, Label: label + " (" + l.T("proof") + ")"})
		hs.Rows = append(hs.Rows, historyRow{Day: day, Kind: kind, Value: value, Level: notice.Quantity(lv, tapproof.MicrogramsPerLiter), Href: href, Above: above})
	}
	return hs
}
