package influx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"github.com/influxdata/influxdb-client-go/v2/api/write"

	"github.com/tapproof/tapproof"
)

// Measurement, tag and field names of the point schema (see the package
// comment). Dashboards build their queries from these.
const (
	Measurement = "reading"

	TagUtility = "utility"
	TagSite    = "site"
	TagDevice  = "device"
	TagAnalyte = "analyte"
	TagMethod  = "method"
	TagUnit    = "unit"
	TagModel   = "model"

	FieldValue          = "value"
	FieldSeq            = "seq"
	FieldLeafIndex      = "leaf_index"
	FieldDetectionLimit = "detection_limit"
)

// DefaultTimeout is the per-request timeout used when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures a Writer.
type Config struct {
	// URL is the InfluxDB base URL, e.g. http://127.0.0.1:8086.
	URL string
	// Token is "user:password" (InfluxDB 1.8 with auth on), empty (auth
	// off), or an API token (InfluxDB 2.x, 3.x). It is a secret.
	Token string
	// Database is the InfluxDB 1.8 database, "db" or "db/rp", or the 2.x/3.x
	// bucket.
	Database string
	// Org is the 2.x organisation; InfluxDB 1.8 ignores it.
	Org string
	// Timeout bounds each HTTP request; DefaultTimeout if zero.
	Timeout time.Duration
}

// Validate reports whether c is usable.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("influx config: URL is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("influx config: URL must be an absolute http or https URL")
	}
	if c.Database == "" {
		return errors.New("influx config: database (or bucket) is required")
	}
	if c.Timeout < 0 {
		return errors.New("influx config: timeout must not be negative")
	}
	return nil
}

// String describes c without its token.
func (c Config) String() string {
	return fmt.Sprintf("influx %s database %q", c.URL, c.Database)
}

// Writer writes accepted readings to InfluxDB. It is safe for concurrent use.
type Writer struct {
	client influxdb2.Client
	write  api.WriteAPIBlocking
	http   *http.Client
}

// New returns a Writer for cfg. It does not contact the server; use Ping.
func New(cfg Config) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	hc := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
	}
	opts := influxdb2.DefaultOptions().
		SetHTTPClient(hc).
		SetPrecision(time.Nanosecond).
		SetLogLevel(0). // errors only; the blocking writer reports through return values
		SetApplicationName("tapproof")
	client := influxdb2.NewClientWithOptions(cfg.URL, cfg.Token, opts)
	return &Writer{
		client: client,
		write:  client.WriteAPIBlocking(cfg.Org, cfg.Database),
		http:   hc,
	}, nil
}

// Write writes readings in one blocking request. Writing a reading that was
// written before is harmless (see the package comment). An error is a
// *WriteError: Retryable says whether writing the same batch again later may
// succeed. A reading that cannot be encoded (a sequence number beyond
// InfluxDB's int64, say) does not hold back the others: they are written,
// and the error lists the skipped readings in Skipped and is not retryable.
func (w *Writer) Write(ctx context.Context, readings []tapproof.Accepted) error {
	pts := make([]*write.Point, 0, len(readings))
	var skipped []string
	var firstErr error
	for _, a := range readings {
		p, err := point(a)
		if err != nil {
			skipped = append(skipped, a.Reading.Key())
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		pts = append(pts, p)
	}
	if len(pts) > 0 {
		if err := w.write.WritePoint(ctx, pts...); err != nil {
			return classify(err)
		}
	}
	if len(skipped) > 0 {
		return &WriteError{Skipped: skipped, Err: fmt.Errorf("%d of %d readings not encodable, first: %w", len(skipped), len(readings), firstErr)}
	}
	return nil
}

// Ping checks that the server answers, for readiness probes.
func (w *Writer) Ping(ctx context.Context) error {
	if _, err := w.client.Ping(ctx); err != nil {
		return fmt.Errorf("influx ping: %w", err)
	}
	return nil
}

// Close releases the Writer's connections. Write must not be called after.
func (w *Writer) Close() {
	w.client.Close()
	w.http.CloseIdleConnections()
}

// point returns the InfluxDB point for a, following the schema in the
// package comment.
func point(a tapproof.Accepted) (*write.Point, error) {
	v, err := PointValues(a)
	if err != nil {
		return nil, err
	}
	// NewPoint sorts tags and fields, so equal readings encode identically.
	return write.NewPoint(Measurement, v.Tags(), v.Fields(), v.Time), nil
}

// Values are the tags, fields and time of the point of one accepted
// reading, following the schema in the package comment: what Write writes
// for it, and what an audit of InfluxDB against the log expects to find.
type Values struct {
	// The tags. Model is empty, and not written, unless the method is NIRS.
	Utility, Site, Device, Analyte, Method, Unit, Model string
	// The fields. DetectionLimit is written only when it is not zero.
	Value          float64
	Seq            int64
	LeafIndex      int64
	DetectionLimit float64
	// Time is the point's timestamp (Timestamp).
	Time time.Time
}

// PointValues returns the values of the point of a, or why a cannot be
// written as a point.
func PointValues(a tapproof.Accepted) (Values, error) {
	r := a.Reading
	if r.Seq > math.MaxInt64 || a.Index > math.MaxInt64 {
		return Values{}, fmt.Errorf("reading %s: seq or leaf index does not fit an InfluxDB integer", r.Key())
	}
	if r.SampledAt.IsZero() {
		return Values{}, fmt.Errorf("reading %s: sampled_at missing", r.Key())
	}
	v := Values{
		Utility: r.Utility, Site: r.Site, Device: r.Device, Analyte: string(r.Analyte), Method: string(r.Method), Unit: string(r.Unit),
		Value: r.Value, Seq: int64(r.Seq), LeafIndex: int64(a.Index), DetectionLimit: r.DetectionLimit,
		Time: Timestamp(r),
	}
	if r.Method == tapproof.NIRS {
		v.Model = r.Model
	}
	return v, nil
}

// Tags returns the tag set of v's point.
func (v Values) Tags() map[string]string {
	tags := map[string]string{
		TagUtility: v.Utility,
		TagSite:    v.Site,
		TagDevice:  v.Device,
		TagAnalyte: v.Analyte,
		TagMethod:  v.Method,
		TagUnit:    v.Unit,
	}
	if v.Model != "" {
		tags[TagModel] = v.Model
	}
	return tags
}

// Fields returns the fields of v's point.
func (v Values) Fields() map[string]any {
	fields := map[string]any{
		FieldValue:     v.Value,
		FieldSeq:       v.Seq,
		FieldLeafIndex: v.LeafIndex,
	}
	if v.DetectionLimit != 0 {
		fields[FieldDetectionLimit] = v.DetectionLimit
	}
	return fields
}

// Timestamp is the point time of r: sampled_at to the millisecond, with
// the sequence number in the nanoseconds below, so that two readings of one
// device sampled in the same millisecond remain two points.
func Timestamp(r tapproof.Reading) time.Time {
	return r.SampledAt.Truncate(time.Millisecond).Add(time.Duration(r.Seq % 1_000_000))
}

// WriteError is the error Write returns.
type WriteError struct {
	// StatusCode is the HTTP status InfluxDB answered with, 0 if none.
	StatusCode int
	// Retryable reports whether the same write may succeed later: true for
	// transport errors, timeouts, 408, 429, 5xx, and for 401, 403 and 404
	// (credentials or database missing, which an operator can fix);
	// false for points the server refuses (400, 413, 422) and for readings
	// that cannot be encoded.
	Retryable bool
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration
	// Skipped holds the keys of readings that could not be encoded and were
	// left out of an otherwise successful write.
	Skipped []string
	Err     error
}

// Error describes the failure with its status, if any.
func (e *WriteError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("influx write: status %d: %v", e.StatusCode, e.Err)
	}
	return fmt.Sprintf("influx write: %v", e.Err)
}

// Unwrap returns the underlying error.
func (e *WriteError) Unwrap() error { return e.Err }

// Retryable reports whether err, returned by Write, is worth retrying. Errors
// that are not a *WriteError are assumed transient.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var we *WriteError
	if errors.As(err, &we) {
		return we.Retryable
	}
	return true
}

// classify turns an error from the client into a *WriteError.
func classify(err error) *WriteError {
	we := &WriteError{Err: err, Retryable: true}
	var he *influxhttp.Error
	if errors.As(err, &he) {
		we.StatusCode = he.StatusCode
		we.RetryAfter = time.Duration(he.RetryAfter) * time.Second
	}
	switch we.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		we.Retryable = false
	}
	return we
}
