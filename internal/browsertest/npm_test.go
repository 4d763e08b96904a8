package browsertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeNpm writes an npm that appends a line to calls for each run, then
// runs script with the install prefix in $prefix.
func fakeNpm(t *testing.T, script string) (npm, calls string) {
	t.Helper()
	dir := t.TempDir()
	npm, calls = filepath.Join(dir, "npm"), filepath.Join(dir, "calls")
	src := `#!/bin/sh
echo "$@" >> ` + calls + `
while [ $# -gt 0 ]; do [ "$1" = --prefix ] && prefix=$2; shift; done
mkdir -p "$prefix/node_modules/axe-core"
` + script + "\n"
	if err := os.WriteFile(npm, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return npm, calls
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// installAxe installs the axe.min.js npm gives it once, under a lock, and
// then reads it from the cache.
func TestInstallAxe(t *testing.T) {
	src, err := axeScript() // the real one, to hand the fake npm
	if err != nil {
		unavailable(t, "axe-core: "+err.Error())
	}
	axeFile := filepath.Join(t.TempDir(), "axe.min.js")
	if err := os.WriteFile(axeFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	npm, calls := fakeNpm(t, `sleep 1; cp `+axeFile+` "$prefix/node_modules/axe-core/axe.min.js"`)
	cache := t.TempDir()

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			got, err := installAxe(context.Background(), cache, npm)
			if err == nil && got != src {
				err = errors.New("not the script npm installed")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := lines(t, calls)
	if len(got) != 1 {
		t.Fatalf("npm ran %d times for 3 installs at once, want once: %q", len(got), got)
	}
	for _, arg := range []string{"install", "axe-core@" + AxeVersion, "--ignore-scripts", "--no-save"} {
		if !strings.Contains(" "+got[0]+" ", " "+arg+" ") {
			t.Errorf("npm %s: want %s among the arguments", got[0], arg)
		}
	}
	entries, err := os.ReadDir(filepath.Join(cache, "npm"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".lock axe-core-"+AxeVersion {
		t.Errorf("the cache holds %q, want only the lock and axe-core-%s", names, AxeVersion)
	}

	// Installed: read from the cache without npm.
	if got, err := installAxe(context.Background(), cache, filepath.Join(t.TempDir(), "no-npm")); err != nil || got != src {
		t.Errorf("the cached axe-core: %v", err)
	}
}

// installAxe refuses a script whose SHA-512 is not the pinned one, keeping
// nothing of it, and says why npm failed or is missing.
func TestInstallAxeFails(t *testing.T) {
	for _, tc := range []struct {
		name, script, want string
	}{
		{"tampered", `echo 'window.axe = {}' > "$prefix/node_modules/axe-core/axe.min.js"`, "want " + axeSHA512},
		{"npm fails", `echo 'npm error 404 Not Found' >&2; exit 1`, "npm error 404 Not Found"},
		{"nothing installed", `true`, "axe.min.js: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			npm, _ := fakeNpm(t, tc.script)
			cache := t.TempDir()
			_, err := installAxe(context.Background(), cache, npm)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("installAxe: %v, want an error with %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(filepath.Join(cache, "npm")); len(entries) != 1 || entries[0].Name() != ".lock" {
				t.Errorf("after a failed install the cache holds %v, want only the lock", entries)
			}
		})
	}
	t.Run("no npm", func(t *testing.T) {
		_, err := installAxe(context.Background(), t.TempDir(), filepath.Join(t.TempDir(), "npm"))
		if !errors.Is(err, errNoNpm) {
			t.Errorf("installAxe without npm: %v, want %v", err, errNoNpm)
		}
	})
}

// Artifacts are $TAPPROOF_ARTIFACTS, else .artifacts/screenshots beside
// the go.mod above the working directory.
func TestArtifactsDir(t *testing.T) {
	t.Setenv("TAPPROOF_ARTIFACTS", "/artifacts/here")
	if dir, err := artifactsDir(); err != nil || dir != "/artifacts/here" {
		t.Errorf("artifactsDir() = %q, %v; want $TAPPROOF_ARTIFACTS", dir, err)
	}
	t.Setenv("TAPPROOF_ARTIFACTS", "")
	root, err := filepath.Abs(filepath.Join("..", "..")) // from internal/browsertest
	if err != nil {
		t.Fatal(err)
	}
	if dir, err := artifactsDir(); err != nil || dir != filepath.Join(root, ".artifacts", "screenshots") {
		t.Errorf("artifactsDir() = %q, %v; want %s/.artifacts/screenshots", dir, err, root)
	}
}
