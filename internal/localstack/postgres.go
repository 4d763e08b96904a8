package localstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// postgresBinGlob matches the Debian layout, one directory per major version.
const postgresBinGlob = "/usr/lib/postgresql/*/bin"

// postgresTools are the programs a stack needs from a PostgreSQL install.
var postgresTools = []string{"initdb", "postgres", "pg_isready", "psql"}

// postgresBinDirs returns directories holding all postgresTools, the newest
// major version first, then the directory of initdb on PATH.
func postgresBinDirs() []string {
	matches, _ := filepath.Glob(postgresBinGlob)
	major := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	slices.SortFunc(matches, func(a, b string) int { return major(b) - major(a) })
	if p, err := exec.LookPath("initdb"); err == nil {
		matches = append(matches, filepath.Dir(p))
	}
	var dirs []string
	for _, dir := range matches {
		if !slices.ContainsFunc(postgresTools, func(t string) bool { return !exists(filepath.Join(dir, t)) }) {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// ensurePostgres installs PostgreSQL with apt-get when it is missing and we
// are root.
func ensurePostgres(ctx context.Context, log io.Writer) error {
	if len(postgresBinDirs()) > 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("postgres: not installed (looked in %s and PATH); install it, e.g. apt-get install -y postgresql", postgresBinGlob)
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("postgres: not installed and no apt-get: %w", err)
	}
	logf(log, "installing PostgreSQL with apt-get (once)...")
	for _, args := range [][]string{
		{"update"},
		{"install", "-y", "--no-install-recommends", "postgresql"},
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = environ(nil, "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("install postgres: apt-get %s: %w\n%s", args[0], err, lastBytes(out, 4096))
		}
	}
	if len(postgresBinDirs()) == 0 {
		return fmt.Errorf("install postgres: still no %v in %s", postgresTools, postgresBinGlob)
	}
	return nil
}

// postgresBinDir picks the install matching an existing cluster's major
// version (PostgreSQL cannot open another major's data), else the newest.
func postgresBinDir(dataDir string) (string, error) {
	dirs := postgresBinDirs()
	if len(dirs) == 0 {
		return "", fmt.Errorf("no %v in %s or PATH", postgresTools, postgresBinGlob)
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return dirs[0], nil
	}
	want := strings.TrimSpace(string(b))
	for _, dir := range dirs {
		out, err := exec.Command(filepath.Join(dir, "postgres"), "--version").Output()
		// "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
		if f := strings.Fields(string(out)); err == nil && len(f) >= 3 && strings.Split(f[2], ".")[0] == want {
			return dir, nil
		}
	}
	return "", fmt.Errorf("data in %s is PostgreSQL %s, which is not installed", dataDir, want)
}

// postgresCredential returns the postgres user's credential when we are
// root (PostgreSQL refuses to run as root), else nil.
//
// The server runs as a direct child with this credential rather than under
// runuser, so that signals, the parent-death signal and Wait reach the
// postmaster itself.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres uid: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("postgres gid: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// checkSearchable reports a parent of dir that cred's user cannot enter,
// which would make initdb and postgres fail with "permission denied".
func checkSearchable(dir string, cred *syscall.Credential) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		mode := fi.Mode().Perm()
		ok = mode&0o001 != 0 ||
			st.Uid == cred.Uid && mode&0o100 != 0 ||
			st.Gid == cred.Gid && mode&0o010 != 0
		if !ok {
			return fmt.Errorf("user postgres cannot enter %s (mode %v): chmod o+x it or use another Dir", p, mode)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// startPostgres initializes the cluster under Dir/postgres if needed, runs
// the server, and creates the trillian database and schema if missing.
func (s *Stack) startPostgres(ctx context.Context) (*process, error) {
	base := filepath.Join(s.Dir, "postgres")
	data := filepath.Join(base, "data")
	sockets := filepath.Join(base, "run")
	for _, d := range []string{base, data, sockets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	if cred != nil {
		// The stack directory is ours; let postgres through it.
		if fi, err := os.Stat(s.Dir); err != nil {
			return nil, err
		} else if err := os.Chmod(s.Dir, fi.Mode().Perm()|0o001); err != nil {
			return nil, err
		}
		if err := checkSearchable(s.Dir, cred); err != nil {
			return nil, err
		}
		for _, d := range []string{base, data, sockets} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	bin, err := postgresBinDir(data)
	if err != nil {
		return nil, err
	}

	if !exists(filepath.Join(data, "PG_VERSION")) {
		s.logf("initializing PostgreSQL cluster in %s", data)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
			"-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C")
		cmd.Dir = base
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("initdb: %w\n%s", err, lastBytes(out, 2048))
		}
	}

	p, err := s.launch(Postgres, procSpec{
		path: filepath.Join(bin, "postgres"),
		args: []string{"-D", data,
			"-p", strconv.Itoa(s.cfg.PostgresPort),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + sockets,
			"-c", "logging_collector=off",
		},
		dir:     base,
		stopSig: syscall.SIGINT, // fast shutdown, as pg_ctl stop -m fast
		cred:    cred,
	})
	if err != nil {
		return nil, err
	}
	ready := func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_isready"),
			"-q", "-h", "127.0.0.1", "-p", strconv.Itoa(s.cfg.PostgresPort), "-U", "postgres", "-t", "1")
		cmd.Dir = s.Dir
		return cmd.Run()
	}
	if err := s.await(ctx, Postgres, p, time.Minute, ready); err != nil {
		return nil, err
	}
	if err := s.loadTrillianSchema(ctx, bin); err != nil {
		p.stop(stopTimeout)
		return nil, err
	}
	return p, nil
}

// loadTrillianSchema creates the trillian database and loads Trillian's
// schema into it, unless that was done before.
func (s *Stack) loadTrillianSchema(ctx context.Context, bin string) error {
	psql := func(db string, args ...string) (string, error) {
		args = append([]string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
			"-h", "127.0.0.1", "-p", strconv.Itoa(s.cfg.PostgresPort), "-U", "postgres", "-d", db}, args...)
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "psql"), args...)
		cmd.Dir = s.Dir // psql needs a working directory that still exists
		cmd.Env = environ(func(k string) bool { return strings.HasPrefix(k, "PG") }, "PGCONNECT_TIMEOUT=10")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("psql: %w: %s", err, lastBytes(out, 2048))
		}
		return strings.TrimSpace(string(out)), nil
	}
	has, err := psql("postgres", "-c", "SELECT count(*) FROM pg_database WHERE datname = 'trillian'")
	if err != nil {
		return fmt.Errorf("trillian database: %w", err)
	}
	if has == "0" {
		if _, err := psql("postgres", "-c", "CREATE DATABASE trillian"); err != nil {
			return fmt.Errorf("trillian database: %w", err)
		}
	}
	loaded, err := psql("trillian", "-c", "SELECT to_regclass('public.trees') IS NOT NULL")
	if err != nil {
		return fmt.Errorf("trillian schema: %w", err)
	}
	if loaded != "t" {
		s.logf("loading Trillian schema %s", s.bins.schema)
		if _, err := psql("trillian", "--single-transaction", "-f", s.bins.schema); err != nil {
			return fmt.Errorf("trillian schema: %w", err)
		}
	}
	return nil
}
