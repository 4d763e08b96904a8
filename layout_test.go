package tapproof_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tapproof/tapproof"

// allowed lists, for each package, the module's packages it may import, so
// that the folder names keep telling the architecture: the domain stands
// alone, the packages owning one external system or concern do not know
// each other, and test harnesses never reach production code. The wiring
// (cmd/, deploy/local, bench) may import anything and is not listed.
var allowed = map[string][]string{
	"":           {}, // the domain, standard library only (checked below)
	"signed":     {""},
	"journal":    {""},
	"broker":     {""},
	"ingest":     {"", "signed", "journal"},
	"anchor":     {"", "signed"},
	"alerts":     {""},
	"influx":     {""},
	"compliance": {"", "signed"},
	"dashboards": {"", "influx"},
	"audit":      {"", "signed", "anchor", "influx"},
	"httpapi":    {""},
	"public":     {"", "alerts", "alerts/cap", "alerts/notice", "alerts/residents", "locale"},
	"simulate":   {"", "signed", "httpapi"},
	// Witnessing, with the log reached through an interface: no
	// tapproof package at all.
	"witness": {},
	// The regulator's monitor: the server reached through an interface
	// (httpapi.Client implements it), checkpoints and witness policies,
	// the entries' signatures and the labs' and reviewers' keys.
	"monitor": {"", "signed", "anchor", "witness", "compliance", "alerts"},
	// Delivering alerts, one concern each: none imports another but
	// alerts/notice, the text that CAP documents and residents' notices
	// share; alerts imports none of them.
	"alerts/notice":    {""},
	"alerts/cap":       {"", "alerts/notice", "locale"},
	"locale":           {},
	"alerts/webhook":   {"", "alerts"},
	"alerts/residents": {"", "alerts", "alerts/notice"},
	// The application: the per-utility logs, enrollment, bundles, the
	// sinks, readiness and the server's wiring. Everything but cmd.
	"platform":              {"", "signed", "journal", "broker", "ingest", "anchor", "alerts", "alerts/cap", "alerts/notice", "alerts/residents", "alerts/webhook", "influx", "compliance", "httpapi", "public", "witness", "audit"},
	"deploy":                {},
	"internal/localstack":   {},
	"internal/alertstest":   {"", "alerts", "internal/natstest", "internal/poll"},
	"internal/poll":         {},
	"internal/browsertest":  {"internal/localstack"},
	"internal/natstest":     {"journal", "broker", "internal/localstack", "internal/natscluster"},
	"internal/natscluster":  {"broker"},
	"internal/tapproofproc": {},
	"internal/loadgen":      {"", "signed", "journal", "anchor", "simulate", "broker"},
}

var wiring = []string{"cmd/", "deploy/local", "bench", "dashboards/gen"}

// TestImportGraph enforces allowed on the non-test imports of every package.
func TestImportGraph(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := rel(fields[0])
		seen[pkg] = true
		ok, listed := allowed[pkg]
		if !listed {
			if !slices.ContainsFunc(wiring, func(w string) bool { return strings.HasPrefix(pkg, w) }) {
				t.Errorf("package %s has no rule: add it to allowed in layout_test.go", name(pkg))
			}
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				if pkg == "" && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					t.Errorf("the root package imports %s: the domain uses the standard library only", imp)
				}
				continue
			}
			if dep := rel(imp); !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s, which it must not (allowed: %v)", name(pkg), name(dep), ok)
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("no package %s: update allowed in layout_test.go", name(pkg))
		}
	}
}

func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}

func name(pkg string) string {
	if pkg == "" {
		return "the root package"
	}
	return pkg
}
