// Command gen writes tapproof's Grafana dashboards as JSON. It is run by
// go generate in package dashboards:
//
//	go generate ./dashboards
//
// Flags:
//
//	-out DIR            directory to write <name>.json files to (default "json")
//	-jurisdiction J     jurisdiction whose lead action level the dashboards
//	                    draw, e.g. US or US-MI (default US)
//
// The action level is the one in force today, so the output changes on the
// day a new rule takes effect (1 Nov 2027 federally); the golden test in
// package dashboards then asks for a regeneration.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/dashboards"
)

func main() {
	out := flag.String("out", "json", "directory to write the dashboard JSON files to")
	jurisdiction := flag.String("jurisdiction", string(tapproof.Federal), "jurisdiction whose lead action level the dashboards draw")
	flag.Parse()
	if err := run(*out, tapproof.Jurisdiction(*jurisdiction), time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string, j tapproof.Jurisdiction, at time.Time) error {
	cfg, err := dashboards.DefaultConfig(j, at)
	if err != nil {
		return err
	}
	ds, err := dashboards.All(cfg)
	if err != nil {
		return err
	}
	return dashboards.Write(out, ds)
}
