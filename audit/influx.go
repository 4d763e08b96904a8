package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/influx"
)

// DefaultChunkSize is how many rows InfluxDB sends per chunk of its answer
// when InfluxConfig.ChunkSize is zero. Auditing a million points on two
// cores (BenchmarkAuditInfluxDB) took a median 12.4 s with chunks of 50,000
// rows, 14.1 s with 10,000, and 19.3 s in time-bounded pages of 50,000.
const DefaultChunkSize = 50000

// InfluxConfig says which InfluxDB an audit reads, and as whom.
type InfluxConfig struct {
	// URL is the InfluxDB base URL, e.g. http://127.0.0.1:8086.
	URL string
	// Database is the InfluxDB 1.8 database, "db" or "db/rp".
	Database string
	// Token is "user:password" of an InfluxDB 1.8 user granted READ on the
	// database and nothing else, empty if auth is off, or an API token with
	// read access (InfluxDB 2.x v1 compatibility). It is a secret.
	Token string
	// ChunkSize is the rows per chunk of InfluxDB's answer; DefaultChunkSize
	// if zero.
	ChunkSize int
	// HeaderTimeout bounds the wait for InfluxDB to start answering; one
	// minute if zero. The whole answer takes as long as it takes: bound it
	// with the context.
	HeaderTimeout time.Duration
}

// String describes c without its token.
func (c InfluxConfig) String() string {
	return fmt.Sprintf("influx %s database %q", c.URL, c.Database)
}

// Influx reads an InfluxDB's points through the InfluxQL /query endpoint,
// with SELECT statements only. It implements Store.
type Influx struct {
	cfg    InfluxConfig
	db, rp string
	hc     *http.Client
}

// NewInflux returns an Influx for cfg. It does not contact the server.
func NewInflux(cfg InfluxConfig) (*Influx, error) {
	if err := (influx.Config{URL: cfg.URL, Database: cfg.Database}).Validate(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if cfg.ChunkSize < 0 || cfg.HeaderTimeout < 0 {
		return nil, errors.New("audit: influx chunk size and header timeout must not be negative")
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = time.Minute
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = cfg.HeaderTimeout
	c := &Influx{cfg: cfg, hc: &http.Client{Transport: tr}}
	c.db, c.rp, _ = strings.Cut(cfg.Database, "/")
	return c, nil
}

// Points hands fn every point of measurement reading with tag utility, as
// one chunked InfluxQL query streams them, series by series.
func (c *Influx) Points(ctx context.Context, utility string, fn func(*Point) error) error {
	if !tapproof.ValidID(utility) {
		return fmt.Errorf("influx points: invalid utility id %q", utility)
	}
	// Ids are [a-z0-9-], so quoting them is safe; GROUP BY * sends each
	// series' tags once, not on every row.
	q := fmt.Sprintf(`SELECT * FROM %q WHERE %q = '%s' GROUP BY *`, influx.Measurement, influx.TagUtility, utility)
	return c.query(ctx, q, fn)
}

// query runs the SELECT statement q, chunked, and hands fn its rows.
func (c *Influx) query(ctx context.Context, q string, fn func(*Point) error) error {
	if !strings.HasPrefix(q, "SELECT ") {
		return fmt.Errorf("influx query %q: an audit only selects", q)
	}
	v := url.Values{"db": {c.db}, "q": {q}, "epoch": {"ns"}, "chunked": {"true"}, "chunk_size": {strconv.Itoa(c.cfg.ChunkSize)}}
	if c.rp != "" {
		v.Set("rp", c.rp)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.URL, "/")+"/query?"+v.Encode(), nil)
	if err != nil {
		return fmt.Errorf("influx query: %w", err)
	}
	influx.SetAuth(req, c.cfg.Token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("influx query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("influx query: %s answered %s: %s", c.cfg.URL, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := readChunks(resp.Body, fn); err != nil {
		return fmt.Errorf("influx query: %w", err)
	}
	return nil
}
