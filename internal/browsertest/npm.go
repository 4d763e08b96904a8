package browsertest

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tapproof/tapproof/internal/localstack"
)

// AxeVersion is the axe-core release the accessibility checks run. It comes
// from the npm registry (npm checks the tarball against the registry's
// integrity hash) and is installed once into
// <cache>/npm/axe-core-AxeVersion, <cache> being where internal/localstack
// keeps its builds (localstack.DefaultCacheDir).
const AxeVersion = "4.14.1"

// axeSHA512 is the SHA-512 of axe.min.js in axe-core AxeVersion, computed
// from the tarball whose sha512 matched the registry's dist.integrity
// (sha512-FHfa+lmN…gudVGtQ==). A change of AxeVersion needs a new one:
//
//	npm pack axe-core@VERSION && tar xzf axe-core-VERSION.tgz package/axe.min.js && sha512sum package/axe.min.js
const axeSHA512 = "e63e659f9806d7ae5bd40899043b0871a5062c5442b01b3f1a3edf5eaf50bf5c3a7104a72463293b4ad1b77c661a0d4e40e850dec89de9d6ece70a8c13a9af17"

// errNoNpm is why axe-core cannot be installed on a machine without npm.
var errNoNpm = errors.New("npm is missing (Debian: apt-get install -y npm)")

// axeScript returns the text of axe.min.js, installing axe-core on the
// first call of the process; the install takes a file lock, so test
// binaries running in parallel install it once.
var axeScript = sync.OnceValues(func() (string, error) {
	cache, err := localstack.DefaultCacheDir()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return installAxe(ctx, cache, "npm")
})

// installAxe returns the text of axe.min.js from cache/npm/axe-core-VERSION,
// installing it there with the npm program if it is missing: into a
// temporary directory beside it, renamed into place once the file's
// SHA-512 is axeSHA512, under a lock on cache/npm/.lock.
func installAxe(ctx context.Context, cache, npm string) (string, error) {
	npmDir := filepath.Join(cache, "npm")
	dir := filepath.Join(npmDir, "axe-core-"+AxeVersion)
	file := func(root string) string { return filepath.Join(root, "node_modules", "axe-core", "axe.min.js") }
	if src, err := readAxe(file(dir)); !errors.Is(err, fs.ErrNotExist) {
		return src, err
	}
	if _, err := exec.LookPath(npm); err != nil {
		return "", fmt.Errorf("%w: %w", errNoNpm, err)
	}
	if err := os.MkdirAll(npmDir, 0o755); err != nil {
		return "", fmt.Errorf("axe-core: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(npmDir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("axe-core: %w", err)
	}
	defer unlock()
	// Another process may have installed it while this one waited.
	if src, err := readAxe(file(dir)); !errors.Is(err, fs.ErrNotExist) {
		return src, err
	}
	tmp, err := os.MkdirTemp(npmDir, ".axe-core-"+AxeVersion+"-")
	if err != nil {
		return "", fmt.Errorf("axe-core: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp,
		"--no-save", "--no-audit", "--no-fund", "--no-update-notifier", "--ignore-scripts",
		"axe-core@"+AxeVersion)
	cmd.Dir = tmp // no package.json above it
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install axe-core@%s: %w\n%s", AxeVersion, err, out)
	}
	src, err := readAxe(file(tmp))
	if err != nil {
		return "", fmt.Errorf("npm install axe-core@%s: %w", AxeVersion, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("axe-core: %w (remove %s to reinstall)", err, dir)
	}
	return src, nil
}

// readAxe returns the text of the axe.min.js at path if its SHA-512 is
// axeSHA512; an error wrapping fs.ErrNotExist if there is none.
func readAxe(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("axe-core: %w", err)
	}
	sum := sha512.Sum512(b)
	if got := hex.EncodeToString(sum[:]); got != axeSHA512 {
		return "", fmt.Errorf("axe-core: %s has SHA-512 %s, want %s for axe-core %s (remove its directory to reinstall)", path, got, axeSHA512, AxeVersion)
	}
	return string(b), nil
}

// lock takes an exclusive flock on path, polling so that ctx can end the
// wait. The returned function releases it.
func lock(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, context.Cause(ctx))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
