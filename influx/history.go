package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
)

// PeakQuery is the InfluxQL of the highest screening reading (any method but
// lab) of analyte in each interval, by site, where scope (an InfluxQL
// condition) holds. It keeps Grafana's macros $timeFilter and $__interval:
// the overview dashboard runs it as it is, and Reader.History fills them in,
// so that the residents' page and the utility's dashboard plot one series.
// columns, if any, are selected beside the peak; the page selects the
// device and sequence number of the peak reading, to link its proof.
func PeakQuery(scope string, analyte tapproof.Analyte, columns ...string) string {
	sel := `max(` + strconv.Quote(FieldValue) + `)`
	for _, c := range columns {
		sel += ", " + strconv.Quote(c)
	}
	return fmt.Sprintf(`SELECT %s FROM %q WHERE %s AND %q = '%s' AND %q != '%s' AND $timeFilter GROUP BY time($__interval), %q fill(none)`,
		sel, Measurement, scope, TagAnalyte, analyte, TagMethod, tapproof.Lab, TagSite)
}

// LabQuery is the InfluxQL of every lab result of analyte where scope holds,
// with the device (the lab) and the sequence number (the leaf index of the
// lab sample) of each, in Grafana's $timeFilter.
func LabQuery(scope string, analyte tapproof.Analyte) string {
	return fmt.Sprintf(`SELECT %q, %q, %q FROM %q WHERE %s AND %q = '%s' AND %q = '%s' AND $timeFilter`,
		FieldValue, FieldSeq, TagDevice, Measurement, scope, TagAnalyte, analyte, TagMethod, tapproof.Lab)
}

// HistoryInterval is the interval of History's peaks: one a day.
const HistoryInterval = 24 * time.Hour

// History returns the lead history of utility's site from from to to: the
// highest screening reading of each UTC day (PeakQuery, its SampledAt the
// start of its day) and every lab result (LabQuery, its Seq the lab
// sample's leaf index), oldest first.
func (r *Reader) History(ctx context.Context, utility, site string, from, to time.Time) ([]tapproof.Reading, error) {
	if !tapproof.ValidID(utility) || !tapproof.ValidID(site) {
		return nil, errors.New("history: invalid utility or site id")
	}
	// Ids are [a-z0-9-], so quoting them is safe.
	scope := fmt.Sprintf(`%q = '%s' AND %q = '%s'`, TagUtility, utility, TagSite, site)
	window := fmt.Sprintf("time >= %d AND time < %d", from.UnixNano(), to.UnixNano())
	fill := strings.NewReplacer("$timeFilter", window, "$__interval", "1d")
	peaks, err := r.query(ctx, fill.Replace(PeakQuery(scope, tapproof.Lead, FieldSeq, TagDevice, TagMethod, TagUnit)))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	labs, err := r.query(ctx, fill.Replace(LabQuery(scope, tapproof.Lead)))
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	var out []tapproof.Reading
	for _, row := range peaks {
		out = append(out, tapproof.Reading{Utility: utility, Site: site, Analyte: tapproof.Lead, Device: row.str(TagDevice),
			Seq: row.uint(FieldSeq), Value: row.float("max"), Unit: tapproof.Unit(row.str(TagUnit)), Method: tapproof.Method(row.str(TagMethod)), SampledAt: row.time})
	}
	for _, row := range labs {
		out = append(out, tapproof.Reading{Utility: utility, Site: site, Analyte: tapproof.Lead, Device: row.str(TagDevice),
			Seq: row.uint(FieldSeq), Value: row.float(FieldValue), Unit: tapproof.MicrogramsPerLiter, Method: tapproof.Lab, SampledAt: row.time.Truncate(time.Millisecond)})
	}
	slices.SortStableFunc(out, func(a, b tapproof.Reading) int { return a.SampledAt.Compare(b.SampledAt) })
	return out, nil
}

// row is one row of a query's answer, by column, with its series' tags.
type row struct {
	time time.Time
	cols map[string]json.RawMessage
	tags map[string]string
}

func (r row) str(c string) string {
	var s string
	_ = json.Unmarshal(r.cols[c], &s)
	return s
}

func (r row) float(c string) float64 {
	f, _ := strconv.ParseFloat(string(r.cols[c]), 64)
	return f
}

func (r row) uint(c string) uint64 {
	u, _ := strconv.ParseUint(string(r.cols[c]), 10, 64)
	return u
}

// query runs one InfluxQL query and returns the rows of its series, with
// each row's time.
func (r *Reader) query(ctx context.Context, q string) ([]row, error) {
	db, rp, _ := strings.Cut(r.cfg.Database, "/")
	v := url.Values{"db": {db}, "q": {q}, "epoch": {"ns"}}
	if rp != "" {
		v.Set("rp", rp)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(r.cfg.URL, "/")+"/query?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	SetAuth(req, r.cfg.Token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("influxdb answered %s", resp.Status)
	}
	var res struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Tags    map[string]string   `json:"tags"`
				Columns []string            `json:"columns"`
				Values  [][]json.RawMessage `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, err
	}
	if len(res.Results) == 0 {
		return nil, errors.New("empty answer")
	}
	if e := res.Results[0].Error; e != "" {
		return nil, errors.New(e)
	}
	var out []row
	for _, s := range res.Results[0].Series {
		for _, vals := range s.Values {
			rw := row{cols: map[string]json.RawMessage{}, tags: s.Tags}
			for i, c := range s.Columns {
				if i < len(vals) {
					rw.cols[c] = vals[i]
				}
			}
			ns, err := strconv.ParseInt(string(rw.cols["time"]), 10, 64)
			if err != nil {
				continue
			}
			rw.time = time.Unix(0, ns).UTC()
			out = append(out, rw)
		}
	}
	return out, nil
}
