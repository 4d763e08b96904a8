package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// InfluxDBPluginID is the plugin id of Grafana's InfluxDB data source, which
// speaks InfluxQL to InfluxDB 1.x, 2.x (through DBRP mappings) and 3.x.
const InfluxDBPluginID = "influxdb"

// ResultFormat is how Grafana shapes the result of an InfluxQL query.
type ResultFormat string

// Result formats of Grafana's InfluxDB data source.
const (
	TimeSeries ResultFormat = "time_series" // one frame per series
	Table      ResultFormat = "table"       // one table, tags as columns
)

// InfluxQLQuery is a raw InfluxQL query of Grafana's InfluxDB data source, in
// the JSON form the data source stores in a panel's targets. The
// grafana-foundation-sdk has no InfluxDB query type; InfluxQLQuery is one,
// implementing the SDK's variants.Dataquery.
//
// Query may use Grafana's macros and template variables: $timeFilter,
// $__interval, $utility, $site.
type InfluxQLQuery struct {
	// RefId identifies the query within its panel: "A", "B", ...
	RefId string `json:"refId"`
	// Hide excludes the query's result from the panel.
	Hide *bool `json:"hide,omitempty"`
	// Datasource is the InfluxDB data source to query.
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	// Query is the InfluxQL text.
	Query string `json:"query"`
	// RawQuery is always true: the query is InfluxQL text, not the
	// data source's visual query editor model.
	RawQuery bool `json:"rawQuery"`
	// ResultFormat is TimeSeries or Table.
	ResultFormat ResultFormat `json:"resultFormat"`
	// Alias names the series, e.g. "$tag_site"; empty uses the default.
	Alias string `json:"alias,omitempty"`
}

var _ variants.Dataquery = InfluxQLQuery{}

// ImplementsDataqueryVariant marks InfluxQLQuery as a data query for the SDK.
func (InfluxQLQuery) ImplementsDataqueryVariant() {}

// DataqueryType returns the InfluxDB plugin id.
func (InfluxQLQuery) DataqueryType() string { return InfluxDBPluginID }

// Validate reports whether q is complete: it has InfluxQL text, is raw, and
// has a known result format.
func (q InfluxQLQuery) Validate() error {
	if q.Query == "" {
		return errors.New("influxql query: query text is empty")
	}
	if !q.RawQuery {
		return errors.New("influxql query: rawQuery must be true")
	}
	switch q.ResultFormat {
	case TimeSeries, Table:
	default:
		return fmt.Errorf("influxql query: unknown result format %q", q.ResultFormat)
	}
	return nil
}

// Equals reports whether other is an InfluxQLQuery equal to q.
func (q InfluxQLQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(InfluxQLQuery)
	if !ok {
		if p, isPtr := other.(*InfluxQLQuery); isPtr && p != nil {
			o, ok = *p, true
		}
	}
	if !ok {
		return false
	}
	if (q.Hide == nil) != (o.Hide == nil) || (q.Hide != nil && *q.Hide != *o.Hide) {
		return false
	}
	if (q.Datasource == nil) != (o.Datasource == nil) ||
		(q.Datasource != nil && !q.Datasource.Equals(*o.Datasource)) {
		return false
	}
	return q.RefId == o.RefId && q.Query == o.Query && q.RawQuery == o.RawQuery &&
		q.ResultFormat == o.ResultFormat && q.Alias == o.Alias
}

// InfluxQLVariantConfig tells the SDK's runtime how to decode InfluxQL
// queries, for code that unmarshals dashboards:
//
//	cog.NewRuntime().RegisterDataqueryVariant(dashboards.InfluxQLVariantConfig())
func InfluxQLVariantConfig() variants.DataqueryConfig {
	decode := func(raw []byte) (variants.Dataquery, error) {
		var q InfluxQLQuery
		if err := json.Unmarshal(raw, &q); err != nil {
			return nil, fmt.Errorf("influxql query: %w", err)
		}
		return q, nil
	}
	return variants.DataqueryConfig{
		Identifier:                 InfluxDBPluginID,
		DataqueryUnmarshaler:       decode,
		StrictDataqueryUnmarshaler: decode,
	}
}

// InfluxQLBuilder builds an InfluxQLQuery. It implements the SDK's
// cog.Builder[variants.Dataquery], so it can be passed to any panel
// builder's WithTarget.
type InfluxQLBuilder struct {
	q InfluxQLQuery
}

var _ cog.Builder[variants.Dataquery] = (*InfluxQLBuilder)(nil)

// NewInfluxQL returns a builder of a time series query with text query on
// the tapproof InfluxDB data source (DatasourceInfluxDB).
func NewInfluxQL(query string) *InfluxQLBuilder {
	return &InfluxQLBuilder{q: InfluxQLQuery{
		RefId:        "A",
		Datasource:   influxRef(),
		Query:        query,
		RawQuery:     true,
		ResultFormat: TimeSeries,
	}}
}

// RefId sets the query's id within its panel.
func (b *InfluxQLBuilder) RefId(refID string) *InfluxQLBuilder {
	b.q.RefId = refID
	return b
}

// Alias sets the series name pattern, e.g. "$tag_site".
func (b *InfluxQLBuilder) Alias(alias string) *InfluxQLBuilder {
	b.q.Alias = alias
	return b
}

// Table makes the query return one table instead of time series.
func (b *InfluxQLBuilder) Table() *InfluxQLBuilder {
	b.q.ResultFormat = Table
	return b
}

// Hide hides the query's result.
func (b *InfluxQLBuilder) Hide(hide bool) *InfluxQLBuilder {
	b.q.Hide = &hide
	return b
}

// Datasource sets the data source; NewInfluxQL's default is DatasourceInfluxDB.
func (b *InfluxQLBuilder) Datasource(ref common.DataSourceRef) *InfluxQLBuilder {
	b.q.Datasource = &ref
	return b
}

// Build returns the query, or an error if it is incomplete.
func (b *InfluxQLBuilder) Build() (variants.Dataquery, error) {
	if err := b.q.Validate(); err != nil {
		return InfluxQLQuery{}, cog.MakeBuildErrors("influxql", err)
	}
	return b.q, nil
}
