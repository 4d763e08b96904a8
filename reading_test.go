package tapproof_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/tapproof/tapproof"
)

var (
	methods  = []tapproof.Method{tapproof.ASV, tapproof.Fluorescence, tapproof.NIRS, tapproof.Lab, "ICP-MS"}
	analytes = []tapproof.Analyte{tapproof.Lead, tapproof.Copper, tapproof.Turbidity, tapproof.TOC, tapproof.Iron, "arsenic"}
)

// TestMethodReports holds the whole table: lead sensors report lead and
// copper, NIRS the surrogates only, and no device reports as a lab.
func TestMethodReports(t *testing.T) {
	want := map[tapproof.Method][]tapproof.Analyte{
		tapproof.ASV:          {tapproof.Lead, tapproof.Copper},
		tapproof.Fluorescence: {tapproof.Lead, tapproof.Copper},
		tapproof.NIRS:         {tapproof.Turbidity, tapproof.TOC, tapproof.Iron},
	}
	for _, m := range methods {
		for _, a := range analytes {
			w := false
			for _, ok := range want[m] {
				w = w || ok == a
			}
			if got := m.Reports(a); got != w {
				t.Errorf("Method(%q).Reports(%q) = %v, want %v", m, a, got, w)
			}
		}
	}
}

func TestReadingPermittedFor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		kind    tapproof.Method
		method  tapproof.Method
		analyte tapproof.Analyte
		ok      bool
	}{
		{"ASV lead", tapproof.ASV, tapproof.ASV, tapproof.Lead, true},
		{"ASV copper", tapproof.ASV, tapproof.ASV, tapproof.Copper, true},
		{"fluorescence lead", tapproof.Fluorescence, tapproof.Fluorescence, tapproof.Lead, true},
		{"NIRS turbidity", tapproof.NIRS, tapproof.NIRS, tapproof.Turbidity, true},
		{"NIRS toc", tapproof.NIRS, tapproof.NIRS, tapproof.TOC, true},
		{"NIRS iron", tapproof.NIRS, tapproof.NIRS, tapproof.Iron, true},
		{"NIRS lead", tapproof.NIRS, tapproof.NIRS, tapproof.Lead, false},
		{"NIRS copper", tapproof.NIRS, tapproof.NIRS, tapproof.Copper, false},
		{"ASV turbidity", tapproof.ASV, tapproof.ASV, tapproof.Turbidity, false},
		{"ASV device claiming NIRS", tapproof.ASV, tapproof.NIRS, tapproof.Turbidity, false},
		{"ASV device claiming fluorescence", tapproof.ASV, tapproof.Fluorescence, tapproof.Lead, false},
		{"NIRS device claiming ASV", tapproof.NIRS, tapproof.ASV, tapproof.Lead, false},
		{"ASV device claiming lab", tapproof.ASV, tapproof.Lab, tapproof.Lead, false},
		{"NIRS device claiming lab", tapproof.NIRS, tapproof.Lab, tapproof.Lead, false},
		// Enrolled as lab before Enrollable refused it: still no reading.
		{"lab device, lab lead", tapproof.Lab, tapproof.Lab, tapproof.Lead, false},
		{"lab device, lab copper", tapproof.Lab, tapproof.Lab, tapproof.Copper, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tapproof.Reading{Device: "d1", Method: tc.method, Analyte: tc.analyte}
			err := r.PermittedFor(tc.kind)
			if tc.ok {
				if err != nil {
					t.Errorf("PermittedFor(%q) of a %s %s reading = %v, want nil", tc.kind, tc.method, tc.analyte, err)
				}
				return
			}
			var rej *tapproof.Rejection
			if !errors.As(err, &rej) || rej.Reason != tapproof.ReasonNotPermitted {
				t.Errorf("PermittedFor(%q) of a %s %s reading = %v, want a %s rejection", tc.kind, tc.method, tc.analyte, err, tapproof.ReasonNotPermitted)
			}
		})
	}
}

func TestDeviceEnrollable(t *testing.T) {
	for _, kind := range []tapproof.Method{tapproof.ASV, tapproof.Fluorescence, tapproof.NIRS, tapproof.Lab} {
		d := tapproof.Device{ID: "d1", Kind: kind}
		err := d.Enrollable()
		var rej *tapproof.Rejection
		switch {
		case kind == tapproof.Lab && (!errors.As(err, &rej) || rej.Reason != tapproof.ReasonNotPermitted):
			t.Errorf("Device{Kind: %q}.Enrollable() = %v, want a %s rejection", kind, err, tapproof.ReasonNotPermitted)
		case kind != tapproof.Lab && err != nil:
			t.Errorf("Device{Kind: %q}.Enrollable() = %v, want nil", kind, err)
		}
	}
}

// An enrollment of kind lab already in a log still decodes: a regulator
// replaying an old log reads it back with Validate.
func TestDeviceValidateKeepsLoggedLabKind(t *testing.T) {
	d := tapproof.Device{ID: "d1", Utility: "u1", Site: "s1", Kind: tapproof.Lab,
		PublicKey: make(ed25519.PublicKey, ed25519.PublicKeySize), Firmware: strings.Repeat("ab", 32), Status: tapproof.DeviceActive}
	if err := d.Validate(); err != nil {
		t.Errorf("Device{Kind: lab}.Validate() = %v, want nil", err)
	}
}
