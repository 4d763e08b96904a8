package main

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// components name the processes the CPU account follows, by the command
// name the kernel keeps (/proc/PID/comm, at most 15 characters).
var components = map[string]string{
	"tapproof":        "tapproof",
	"nats-server":     "nats-server",
	"postgres":        "postgresql",
	"trillian_log_se": "trillian-server",
	"trillian_log_si": "trillian-signer",
	"influxd":         "influxdb",
	"bench":           "publisher",
}

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat times;
// 100 on every Linux this runs on.
const clockTicks = 100

// cpuSeconds sums user and system CPU time of every running process, by
// component. Processes that exit between two samples (PostgreSQL backends
// of closed connections) lose their time; tapproof's connections are
// pooled and last the run.
func cpuSeconds() map[string]float64 {
	out := map[string]float64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		name, ok := components[s[open+1:close]]
		if !ok {
			continue
		}
		// After the name: state, ppid, … utime is field 14, stime 15.
		fields := strings.Fields(s[close+1:])
		if len(fields) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(fields[11], 64)
		st, _ := strconv.ParseFloat(fields[12], 64)
		out[name] += (ut + st) / clockTicks
	}
	return out
}

// cpuSince is what each component spent since before.
func cpuSince(before map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for name, s := range cpuSeconds() {
		if d := s - before[name]; d > 0 {
			out[name] = d
		}
	}
	return out
}

// formatCPU lists a CPU account, largest first.
func formatCPU(us map[string]float64) string {
	names := make([]string, 0, len(us))
	for n := range us {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(us[b], us[a]) })
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.0f µs", n, us[n]))
	}
	return strings.Join(parts, ", ")
}
