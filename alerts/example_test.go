package alerts_test

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/alerts"
)

func ExampleEvaluator_Evaluate() {
	e := alerts.NewEvaluator(tapproof.RuleBook{Jurisdictions: map[string]tapproof.Jurisdiction{"flint": "US-MI"}})
	r := tapproof.Reading{
		Utility: "flint", Site: "saginaw-st", Device: "asv-9", Seq: 42,
		Analyte: tapproof.Lead, Value: 12.4, Unit: tapproof.MicrogramsPerLiter, Method: tapproof.ASV,
		SampledAt: time.Date(2026, time.May, 4, 6, 30, 0, 0, time.UTC),
	}
	if a, ok := e.Evaluate(r, time.Now()); ok {
		fmt.Println(a.ID, a.Class, a.Value, ">", a.Level, a.Unit, "by", a.Rule)
	}
	// Output: screening-asv-9-42 screening 12.4 > 12 ug/L by us-mi-lead@v1
}

func ExampleSign() {
	fmt.Println(alerts.Sign("s3cr3t", []byte(`{"id":"x"}`)))
	// Output: sha256=b4427a71020bc4d9e3d7a774077437efad88155eb9f5c6716033d4af7e300c3e
}

// A webhook receiver checks the signature before it trusts the body, and
// deduplicates on the alert id: delivery is at least once.
func ExampleVerify() {
	const secret = "shared with tapproof"
	seen := map[string]bool{} // a real receiver keeps this in its database
	_ = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil || !alerts.Verify(secret, body, r.Header.Get(alerts.HeaderSignature)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if id := r.Header.Get(alerts.HeaderAlertID); !seen[id] {
			seen[id] = true
			// notify residents ...
		}
		w.WriteHeader(http.StatusNoContent) // any 2xx acknowledges
	})
}
