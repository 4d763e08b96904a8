// Package deploy holds no code: this directory holds the files that install
// tapproof and its neighbours, and this package's tests check them against
// what tapproof needs.
//
//	compose/      Docker Compose for one host, and the tapproof image
//	kubernetes/   manifests (kustomize) with tapproof as a Deployment
//	grafana/      provisioning of the data sources and dashboards
//	prometheus/   scrape configuration, alerting rules and their unit tests
//	local/        the demo stack on real binaries, without containers
//
// The tests parse the files (no Docker engine or cluster is needed) and run
// promtool, from Debian's prometheus package, when it is installed; with
// CI set, a missing promtool fails the tests. docs/operations.md explains
// how to install with each.
//
// The package imports nothing from tapproof; its tests read the tapproof
// source only to learn which TAPPROOF_* variables the serve command reads.
package deploy
