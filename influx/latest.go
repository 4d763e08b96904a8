package influx

import (
	"context"
	"fmt"
	"net/http"
	"slices"
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
	rows, err := r.query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("latest readings: %w", err)
	}
	var out []tapproof.Reading
	for _, row := range rows {
		if v := string(row.cols[FieldValue]); v == "" || v == "null" {
			continue
		}
		out = append(out, tapproof.Reading{
			Utility: utility, Site: site, Device: row.tags[TagDevice], Seq: row.uint(FieldSeq),
			Analyte: tapproof.Analyte(row.tags[TagAnalyte]), Value: row.float(FieldValue), Unit: tapproof.Unit(row.tags[TagUnit]),
			Method: tapproof.Method(row.tags[TagMethod]), SampledAt: row.time.Truncate(time.Millisecond),
		})
	}
	slices.SortFunc(out, func(a, b tapproof.Reading) int { return b.SampledAt.Compare(a.SampledAt) })
	return out, nil
}
