package influx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
)

// Reader answers the status page's questions with InfluxQL through the
// /query endpoint, which InfluxDB 1.8, 2.x (v1 compatibility) and 3.x serve.
type Reader struct {
	cfg Config
	hc  *http.Client
}

// NewReader returns a Reader for cfg.
func NewReader(cfg Config) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Reader{cfg: cfg, hc: &http.Client{Timeout: cfg.Timeout}}, nil
}

// LatestWindow is how far back LatestReadings looks.
const LatestWindow = 30 * 24 * time.Hour

// LatestReadings returns the newest reading of each device and analyte at
// utility's site within LatestWindow, newest first.
func (r *Reader) LatestReadings(ctx context.Context, utility, site string) ([]tapproof.Reading, error) {
	if !tapproof.ValidID(utility) || !tapproof.ValidID(site) {
		return nil, fmt.Errorf("latest readings: invalid utility or site id")
	}
	// Ids are [a-z0-9-], so quoting them is safe.
	q := fmt.Sprintf(`SELECT last(%q) AS %q, %q FROM %q WHERE %q = '%s' AND %q = '%s' AND time > now() - %dh GROUP BY %q, %q, %q, %q`,
		FieldValue, FieldValue, FieldSeq, Measurement, TagUtility, utility, TagSite, site,
		int(LatestWindow.Hours()), TagDevice, TagAnalyte, TagUnit, TagMethod)
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
		return nil, fmt.Errorf("latest readings: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("latest readings: influxdb answered %s", resp.Status)
	}
	var res struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Tags    map[string]string `json:"tags"`
				Columns []string          `json:"columns"`
				Values  [][]json.Number   `json:"values"`
			} `json:"series"`
		} `json:"results"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("latest readings: %w", err)
	}
	if len(res.Results) == 0 {
		return nil, errors.New("latest readings: empty answer")
	}
	if e := res.Results[0].Error; e != "" {
		return nil, fmt.Errorf("latest readings: %s", e)
	}
	var out []tapproof.Reading
	for _, s := range res.Results[0].Series {
		for _, row := range s.Values {
			if len(row) < 3 {
				continue
			}
			ns, err1 := row[0].Int64()
			val, err2 := row[1].Float64()
			seq, err3 := row[2].Int64()
			if err1 != nil || err2 != nil || err3 != nil {
				continue
			}
			out = append(out, tapproof.Reading{
				Utility: utility, Site: site, Device: s.Tags[TagDevice], Seq: uint64(seq),
				Analyte: tapproof.Analyte(s.Tags[TagAnalyte]), Value: val, Unit: tapproof.Unit(s.Tags[TagUnit]),
				Method: tapproof.Method(s.Tags[TagMethod]), SampledAt: time.Unix(0, ns).UTC().Truncate(time.Millisecond),
			})
		}
	}
	slices.SortFunc(out, func(a, b tapproof.Reading) int { return b.SampledAt.Compare(a.SampledAt) })
	return out, nil
}
