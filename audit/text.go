package audit

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
)

// String describes f on one line: its kind, device, sequence number and
// leaf index, the point, and what differs.
func (f Finding) String() string {
	leaf := "-"
	if f.Index != nil {
		leaf = fmt.Sprint(*f.Index)
		if f.Kind == WithoutLeaf {
			leaf += " (claimed)"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s device %s seq %d leaf %s: %s %s %s %s at %s, site %s",
		strings.ToUpper(string(f.Kind)), orNone(f.Device), f.Seq, leaf,
		orNone(f.Method), orNone(f.Analyte), formatFloat(f.Value), orNone(f.Unit), f.Time.Format(time.RFC3339Nano), orNone(f.Site))
	switch f.Kind {
	case Missing:
		b.WriteString(": not in InfluxDB")
	case Changed:
		for i, d := range f.Diffs {
			sep := "; "
			if i == 0 {
				sep = ": "
			}
			fmt.Fprintf(&b, "%s%s want %s, got %s", sep, d.What, d.Want, d.Got)
		}
	case WithoutLeaf:
		b.WriteString(": " + f.Note)
	}
	return b.String()
}

// WriteText writes r for people: one line per finding, then a summary.
func (r *Report) WriteText(w io.Writer) error {
	b := bufio.NewWriter(w)
	for _, f := range r.Findings {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	fmt.Fprintf(b, "audit of %s in InfluxDB at checkpoint %s, size %d, root %s\n",
		r.Utility, r.Origin, r.Size, base64.StdEncoding.EncodeToString(r.Root))
	fmt.Fprintf(b, "  %d reading and lab sample leaves", r.Leaves)
	if r.Unwritten > 0 {
		fmt.Fprintf(b, " (and %d that tapproof writes no point for)", r.Unwritten)
	}
	fmt.Fprintf(b, ", %d points in InfluxDB, %d newer than the checkpoint", r.Points, r.Newer)
	if r.NewestIndex != nil {
		fmt.Fprintf(b, " (claiming leaves up to %d)", *r.NewestIndex)
	}
	b.WriteString("\n")
	if r.Clean() {
		b.WriteString("  CLEAN: every leaf's point is in InfluxDB as logged, and every point has its leaf\n")
	} else {
		fmt.Fprintf(b, "  %d FINDINGS: %d missing, %d changed, %d without a leaf\n",
			len(r.Findings), r.Count(Missing), r.Count(Changed), r.Count(WithoutLeaf))
	}
	return b.Flush()
}
