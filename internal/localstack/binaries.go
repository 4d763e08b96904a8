package localstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// InfluxDBVersion is the InfluxDB release Start builds and runs. Later 1.x
// and 2.x releases need a Rust library and do not build with Go alone.
const InfluxDBVersion = "v1.8.10"

// trillianModule is the module the Trillian binaries and schema come from, at
// the version the repository's go.mod requires.
const trillianModule = "github.com/google/trillian"

// binaries are the programs and files a Stack runs.
type binaries struct {
	influxd   string
	logServer string
	logSigner string
	schema    string // Trillian's PostgreSQL storage.sql
}

// ensureBinaries returns the cached binaries, building those missing, and
// makes sure PostgreSQL is installed. Builds go to
// cacheDir/bin/influxd-VERSION and cacheDir/bin/trillian-VERSION; a file
// lock on cacheDir/bin/.lock serializes test binaries starting in parallel.
func ensureBinaries(ctx context.Context, cacheDir string, log io.Writer) (binaries, error) {
	binDir := filepath.Join(cacheDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return binaries{}, fmt.Errorf("binary cache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(binDir, ".lock"), log)
	if err != nil {
		return binaries{}, err
	}
	defer unlock()
	// Builds interrupted before their rename; nobody else builds now.
	stale, _ := filepath.Glob(filepath.Join(binDir, ".build-*"))
	for _, dir := range stale {
		os.RemoveAll(dir)
	}

	root, err := moduleRoot()
	if err != nil {
		return binaries{}, err
	}
	version, modDir, err := trillianVersion(ctx, root)
	if err != nil {
		return binaries{}, err
	}

	influxDir := filepath.Join(binDir, "influxd-"+InfluxDBVersion)
	trillianDir := filepath.Join(binDir, "trillian-"+version)
	b := binaries{
		influxd:   filepath.Join(influxDir, "influxd"),
		logServer: filepath.Join(trillianDir, "trillian_log_server"),
		logSigner: filepath.Join(trillianDir, "trillian_log_signer"),
	}

	if !exists(b.influxd) {
		err := build(ctx, log, influxDir, "influxd "+InfluxDBVersion, "about 2 minutes", func(tmp string) *exec.Cmd {
			cmd := goCommand(ctx, "install", "github.com/influxdata/influxdb/cmd/influxd@"+InfluxDBVersion)
			cmd.Env = append(cmd.Env, "GOBIN="+tmp, "GOWORK=off")
			cmd.Dir = os.TempDir() // outside any module
			return cmd
		})
		if err != nil {
			return binaries{}, err
		}
	}
	if !exists(b.logServer) || !exists(b.logSigner) {
		err := build(ctx, log, trillianDir, "trillian "+version, "2 to 4 minutes", func(tmp string) *exec.Cmd {
			cmd := goCommand(ctx, "build", "-o", tmp+string(filepath.Separator),
				trillianModule+"/cmd/trillian_log_server", trillianModule+"/cmd/trillian_log_signer")
			cmd.Dir = root // versions come from our go.mod
			return cmd
		})
		if err != nil {
			return binaries{}, err
		}
	}

	if modDir == "" { // binaries cached, module source not downloaded yet
		if out, err := goCommand(ctx, "mod", "download", trillianModule).CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("download trillian: %w: %s", err, out)
		}
		if _, modDir, err = trillianVersion(ctx, root); err != nil {
			return binaries{}, err
		}
	}
	b.schema = filepath.Join(modDir, "storage", "postgresql", "schema", "storage.sql")
	if !exists(b.schema) {
		return binaries{}, fmt.Errorf("trillian schema: %s not found", b.schema)
	}

	if err := ensurePostgres(ctx, log); err != nil {
		return binaries{}, err
	}
	return b, nil
}

// build runs the command made by cmd into a temporary directory next to
// dir, then renames it to dir, so dir is either complete or absent.
func build(ctx context.Context, log io.Writer, dir, what, takes string, cmd func(tmp string) *exec.Cmd) error {
	logf(log, "building %s (%s, once) into %s...", what, takes, dir)
	begin := time.Now()
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-"+filepath.Base(dir)+"-")
	if err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	defer os.RemoveAll(tmp)
	if out, err := cmd(tmp).CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %w\n%s", what, err, lastBytes(out, 4096))
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	if err := os.RemoveAll(dir); err != nil { // an incomplete earlier layout
		return fmt.Errorf("build %s: %w", what, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	logf(log, "built %s in %v", what, time.Since(begin).Round(time.Second))
	return nil
}

// goCommand returns a go command whose environment has no -mod flag in
// GOFLAGS: `go install pkg@version` refuses one, and a build in our module
// must not rewrite go.mod.
func goCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	var flags []string
	for f := range strings.FieldsSeq(os.Getenv("GOFLAGS")) {
		if !strings.HasPrefix(f, "-mod=") {
			flags = append(flags, f)
		}
	}
	cmd.Env = environ(func(k string) bool { return k == "GOFLAGS" },
		"GOFLAGS="+strings.Join(flags, " "))
	return cmd
}

// moduleRoot walks up from the working directory to the nearest go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if exists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		if dir == filepath.Dir(dir) {
			return "", fmt.Errorf("module root: no go.mod above %s; run inside the tapproof repository", wd)
		}
	}
}

// trillianVersion returns the Trillian version root's go.mod requires and
// its directory in the module cache ("" when not downloaded).
func trillianVersion(ctx context.Context, root string) (version, dir string, err error) {
	cmd := goCommand(ctx, "list", "-m", "-f", "{{.Version}} {{.Dir}}", trillianModule)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("trillian module: %w: %s", err, stderr.Bytes())
	}
	version, dir, _ = strings.Cut(strings.TrimSpace(string(out)), " ")
	if version == "" {
		return "", "", fmt.Errorf("trillian module: no version in %s/go.mod", root)
	}
	return version, dir, nil
}

// lock takes an exclusive flock on path, polling so that ctx can end the
// wait. The returned function releases it.
func lock(ctx context.Context, path string, log io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	for waited := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("cache lock: %w", err)
		}
		if !waited {
			logf(log, "waiting for another process building into %s...", filepath.Dir(path))
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("cache lock: %w", context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func lastBytes(b []byte, n int) []byte {
	return b[max(len(b)-n, 0):]
}
