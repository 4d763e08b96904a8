package dashboards_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/tapproof/tapproof/dashboards"
)

// A panel charting InfluxQL, with the query type this package adds to the
// SDK.
func ExampleNewInfluxQL() {
	panel, err := timeseries.NewPanelBuilder().
		Title("Lead by site").
		WithTarget(dashboards.NewInfluxQL(`SELECT max("value") FROM "reading" WHERE "utility" = '$utility' AND "analyte" = 'lead' AND $timeFilter GROUP BY time($__interval), "site" fill(none)`).
			Alias("$tag_site")).
		Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := json.MarshalIndent(panel.Targets[0], "", "  ")
	fmt.Println(string(b))
	// Output:
	// {
	//   "refId": "A",
	//   "datasource": {
	//     "type": "influxdb",
	//     "uid": "tapproof-influxdb"
	//   },
	//   "query": "SELECT max(\"value\") FROM \"reading\" WHERE \"utility\" = '$utility' AND \"analyte\" = 'lead' AND $timeFilter GROUP BY time($__interval), \"site\" fill(none)",
	//   "rawQuery": true,
	//   "resultFormat": "time_series",
	//   "alias": "$tag_site"
	// }
}

// Every dashboard for the federal lead rule in force on a given day, as the
// generator writes them.
func ExampleAll() {
	cfg, err := dashboards.DefaultConfig("US", mustDate("2026-06-01"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ds, err := dashboards.All(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range ds {
		fmt.Println(d.FileName(), *d.Dashboard.Uid)
	}
	fmt.Println(cfg.LeadRule.Name(), cfg.LeadRule.Level)
	// Output:
	// overview.json tapproof-overview
	// compliance.json tapproof-compliance
	// operations.json tapproof-operations
	// us-lead-lcr@v1 15
}

func mustDate(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}
