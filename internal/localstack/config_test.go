package localstack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{Dir: "x"}, ""},
		{"ports set", Config{Dir: "x", PostgresPort: 15432, InfluxPort: 18086}, ""},
		{"no dir", Config{}, "Dir is required"},
		{"negative port", Config{Dir: "x", InfluxPort: -1}, "out of range"},
		{"big port", Config{Dir: "x", InfluxPort: 70000}, "out of range"},
		{"duplicate port", Config{Dir: "x", PostgresPort: 18086, InfluxPort: 18086}, "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Validate(%+v) = %v, want error containing %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Setenv("TAPPROOF_CACHE", "/cache/here")
	cfg, err := Config{Dir: "rel", InfluxPort: 18086}.withDefaults()
	if err != nil {
		t.Fatalf("withDefaults() = %v", err)
	}
	if cfg.CacheDir != "/cache/here" {
		t.Errorf("CacheDir = %q, want $TAPPROOF_CACHE", cfg.CacheDir)
	}
	if cfg.InfluxDatabase != DefaultInfluxDatabase {
		t.Errorf("InfluxDatabase = %q, want %q", cfg.InfluxDatabase, DefaultInfluxDatabase)
	}
	if cfg.Log == nil {
		t.Error("Log = nil, want io.Discard")
	}
	if !filepath.IsAbs(cfg.Dir) || filepath.Base(cfg.Dir) != "rel" {
		t.Errorf("Dir = %q, want the absolute form of rel", cfg.Dir)
	}
	if cfg.InfluxPort != 18086 {
		t.Errorf("InfluxPort = %d, want the configured 18086", cfg.InfluxPort)
	}
	seen := map[int]bool{}
	for _, p := range cfg.ports() {
		if *p <= 0 || seen[*p] {
			t.Errorf("ports = %v, want all picked and distinct", cfg)
		}
		seen[*p] = true
	}

	t.Setenv("TAPPROOF_CACHE", "")
	user, err := os.UserCacheDir()
	if err != nil {
		t.Skip(err)
	}
	cfg, err = Config{Dir: "x"}.withDefaults()
	if want := filepath.Join(user, "tapproof"); err != nil || cfg.CacheDir != want {
		t.Errorf("withDefaults() CacheDir = %q, %v, want %q", cfg.CacheDir, err, want)
	}
}

func TestQuoteIdent(t *testing.T) {
	for in, want := range map[string]string{
		"tapproof": `"tapproof"`,
		`a"b\c`:    `"a\"b\\c"`,
	} {
		if got := quoteIdent(in); got != want {
			t.Errorf("quoteIdent(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestProcessEarlyExit checks that await notices a child that dies.
func TestProcessEarlyExit(t *testing.T) {
	p, err := launch(procSpec{path: "/bin/sh", args: []string{"-c", "echo boom; exit 3"},
		logPath: filepath.Join(t.TempDir(), "log"), stopSig: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	err = await(t.Context(), p, 10*time.Second, func(context.Context) error { return os.ErrNotExist })
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("await() = %v, want exit status 3", err)
	}
	if err := p.stop(time.Second); err != nil {
		t.Errorf("stop() = %v", err)
	}
}

// TestProcessStopKillsGroup checks that stop kills a child that ignores its
// stop signal, and the child's own children.
func TestProcessStopKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	p, err := launch(procSpec{path: "/bin/sh",
		args:    []string{"-c", `trap "" TERM; sleep 60 & echo $! > ` + pidFile + `; wait`},
		logPath: filepath.Join(dir, "log"), stopSig: syscall.SIGTERM})
	if err != nil {
		t.Fatal(err)
	}
	var pid string
	err = await(t.Context(), p, 10*time.Second, func(context.Context) error {
		b, err := os.ReadFile(pidFile)
		pid = strings.TrimSpace(string(b))
		if err == nil && pid == "" {
			err = os.ErrNotExist
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.stop(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("stop() = %v, want an error saying it was killed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %s still running after stop", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid string) bool {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
