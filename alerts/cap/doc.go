// Package cap renders an alert as an OASIS CAP 1.2 message
// (https://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2-os.html), the
// form in which public-warning aggregators take alerts. Its headline and
// description are the alert's notice (alerts/notice); the module's testdata/cap
// holds the schema its tests validate against.
//
// cap is pure: it talks to no external system and imports only the root
// package tapproof and alerts/notice; never alerts, the other alerts
// subpackages, or anything outside them.
package cap
