package localstack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// TorchwoodVersion is the filippo.io/torchwood release whose litewitness
// and witnessctl StartWitness builds and runs: a C2SP tlog-witness that
// keeps its state in SQLite and signs with an Ed25519 key it gets from an
// ssh-agent.
const TorchwoodVersion = "v0.6.1"

// torchwoodModule is the module litewitness and witnessctl come from.
const torchwoodModule = "filippo.io/torchwood"

// sshTools are the OpenSSH programs a witness needs: an agent to hold its
// key, and the tools to make the key and load it.
var sshTools = []string{"ssh-agent", "ssh-add", "ssh-keygen"}

// maxSocketPath is the longest Unix socket path we hand ssh-agent; Linux
// allows 107 bytes and the BSDs 103.
const maxSocketPath = 100

// WitnessBinaries returns the cached litewitness and witnessctl, building
// both with one go install (under a minute, once) into
// cacheDir/bin/litewitness-VERSION if missing; cacheDir "" is
// $TAPPROOF_CACHE or os.UserCacheDir()/tapproof. It takes the same file
// lock as the other builds.
func WitnessBinaries(ctx context.Context, cacheDir string, log io.Writer) (litewitness, witnessctl string, err error) {
	litewitness, err = cachedBinary(ctx, cacheDir, log, "litewitness", TorchwoodVersion, "under a minute", func(tmp string) *exec.Cmd {
		cmd := goCommand(ctx, "install",
			torchwoodModule+"/cmd/litewitness@"+TorchwoodVersion,
			torchwoodModule+"/cmd/witnessctl@"+TorchwoodVersion)
		cmd.Env = append(cmd.Env, "GOBIN="+tmp, "GOWORK=off")
		cmd.Dir = os.TempDir() // outside any module
		return cmd
	})
	if err != nil {
		return "", "", err
	}
	witnessctl = filepath.Join(filepath.Dir(litewitness), "witnessctl")
	if !exists(witnessctl) {
		return "", "", fmt.Errorf("witnessctl: not next to %s; remove %s to rebuild both", litewitness, filepath.Dir(litewitness))
	}
	return litewitness, witnessctl, nil
}

// WitnessConfig says what a witness is called and where it keeps its state.
// The zero value of every field except Name and Dir is usable.
type WitnessConfig struct {
	// Name is the witness's signed-note name, which its cosignatures
	// carry, e.g. "witness.state-regulator.example". Required; it must not
	// contain spaces or '+'.
	Name string

	// Dir holds the witness's state: its Ed25519 key (witness.key and
	// witness.key.pub, made with ssh-keygen on the first start), the
	// ssh-agent socket, the SQLite database litewitness.db and the logs
	// litewitness.log and ssh-agent.log. Starting again on the same Dir
	// keeps the key and the logs' tree sizes. Required; one witness at a
	// time per Dir.
	Dir string

	// Port is the loopback HTTP port. Zero picks a free one, which the
	// witness keeps across Restart.
	Port int

	// CacheDir holds the built binaries, under CacheDir/bin. Empty means
	// $TAPPROOF_CACHE, or else the "tapproof" directory in
	// os.UserCacheDir().
	CacheDir string

	// Log receives progress lines (builds, starts, stops). Nil means
	// io.Discard. The programs' own output goes to files in Dir.
	Log io.Writer
}

// Witness is a running litewitness on loopback, with the ssh-agent that
// holds its key. Its exported fields are set by StartWitness and must not
// be changed.
type Witness struct {
	// Name is the witness's signed-note name (WitnessConfig.Name).
	Name string
	// Dir is the absolute state directory (WitnessConfig.Dir).
	Dir string
	// URL is the base of the tlog-witness API, http://127.0.0.1:PORT;
	// checkpoints go to URL+"/add-checkpoint".
	URL string
	// VerifierKey is the C2SP signed-note verifier key of the witness's
	// cosignature/v1 key (type 0x04), NAME+HASH+BASE64, as
	// github.com/transparency-dev/formats/note.NewVerifierForCosignatureV1
	// parses it.
	VerifierKey string

	port       int
	repickable bool // the port was picked, and may be again before the first start
	log        io.Writer
	bins       witnessBins
	keyPath    string
	keyID      string // SHA256:... fingerprint, litewitness's -key

	ctlMu sync.Mutex // serializes AddLog's read-then-write

	mu       sync.Mutex // guards the fields below
	server   *process   // litewitness
	agent    *process   // ssh-agent
	agentTmp string     // a directory of our own for the socket, when Dir's path is too long
}

// witnessBins are the programs a witness runs.
type witnessBins struct {
	litewitness, witnessctl     string
	sshAgent, sshAdd, sshKeygen string
}

// StartWitness builds litewitness and witnessctl if they are not cached
// yet, installs OpenSSH's client tools with apt-get if they are missing
// and we are root, makes the witness's key in cfg.Dir on the first start,
// then starts an ssh-agent holding the key and litewitness using it, and
// returns once litewitness answers HTTP. On error nothing is left running.
// The caller must Stop the witness. Logs are registered with AddLog.
func StartWitness(ctx context.Context, cfg WitnessConfig) (*Witness, error) {
	if !validNoteName(cfg.Name) {
		return nil, fmt.Errorf("witness: name %q must be non-empty UTF-8 without spaces or '+'", cfg.Name)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("witness %s: Dir is required", cfg.Name)
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("witness %s: port %d out of range", cfg.Name, cfg.Port)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.CacheDir == "" {
		dir, err := DefaultCacheDir()
		if err != nil {
			return nil, err
		}
		cfg.CacheDir = dir
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}

	var bins witnessBins
	bins.litewitness, bins.witnessctl, err = WitnessBinaries(ctx, cfg.CacheDir, cfg.Log)
	if err != nil {
		return nil, err
	}
	if err := ensureOpenSSH(ctx, cfg.CacheDir, cfg.Log); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		tool string
		path *string
	}{{"ssh-agent", &bins.sshAgent}, {"ssh-add", &bins.sshAdd}, {"ssh-keygen", &bins.sshKeygen}} {
		if *p.path, err = exec.LookPath(p.tool); err != nil {
			return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
		}
	}

	if bins.sshAgent, err = agentBinary(ctx, cfg.CacheDir, cfg.Log, bins.sshAgent); err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}

	w := &Witness{
		Name:       cfg.Name,
		Dir:        dir,
		port:       cfg.Port,
		repickable: cfg.Port == 0,
		log:        cfg.Log,
		bins:       bins,
		keyPath:    filepath.Join(dir, "witness.key"),
	}
	pub, err := w.ensureKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}
	if w.keyID, err = sshFingerprint(pub); err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}
	if w.VerifierKey, err = cosignatureV1VerifierKey(cfg.Name, pub); err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}
	if err := pickPorts([]*int{&w.port}); err != nil {
		return nil, fmt.Errorf("witness %s: pick port: %w", cfg.Name, err)
	}
	w.URL = "http://127.0.0.1:" + strconv.Itoa(w.port)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.start(ctx); err != nil {
		return nil, fmt.Errorf("witness %s: %w", cfg.Name, err)
	}
	return w, nil
}

// LogFile returns the file that receives litewitness's output. Each start
// appends to it after a header line; ssh-agent's output goes to
// ssh-agent.log next to it.
func (w *Witness) LogFile() string {
	return filepath.Join(w.Dir, "litewitness.log")
}

// AddLog registers a log with the witness: its origin (the first line of
// its checkpoints) and its Ed25519 signed-note verifier key, whose name
// must be origin. A new log starts at size 0, so its first checkpoint goes
// with "old 0". Registering a known log with a known key again does
// nothing, so callers on a reused Dir need not check. It runs witnessctl
// on the witness's database, which is fine while litewitness runs:
// litewitness reads the logs and keys from SQLite on every request.
func (w *Witness) AddLog(ctx context.Context, origin, logVerifierKey string) error {
	v, err := note.NewVerifier(logVerifierKey)
	if err != nil {
		return fmt.Errorf("witness %s: add log %s: verifier key: %w", w.Name, origin, err)
	}
	if v.Name() != origin {
		return fmt.Errorf("witness %s: add log %s: verifier key is named %q, not the origin", w.Name, origin, v.Name())
	}
	w.ctlMu.Lock()
	defer w.ctlMu.Unlock()
	logs, err := w.listLogs(ctx)
	if err != nil {
		return fmt.Errorf("witness %s: add log %s: %w", w.Name, origin, err)
	}
	keys, known := logs[origin]
	if !known {
		if _, err := w.witnessctl(ctx, "add-log", "-origin", origin); err != nil {
			return fmt.Errorf("witness %s: add log %s: %w", w.Name, origin, err)
		}
	}
	if !slices.Contains(keys, logVerifierKey) {
		if _, err := w.witnessctl(ctx, "add-key", "-origin", origin, "-key", logVerifierKey); err != nil {
			return fmt.Errorf("witness %s: add log %s: %w", w.Name, origin, err)
		}
	}
	return nil
}

// listLogs returns the keys of every log the database knows, by origin.
func (w *Witness) listLogs(ctx context.Context) (map[string][]string, error) {
	out, err := w.witnessctl(ctx, "list-logs")
	if err != nil {
		return nil, err
	}
	logs := make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l struct {
			Origin string    `json:"origin"`
			Keys   []*string `json:"keys"` // [null] for a log without keys
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("witnessctl list-logs: %w: %q", err, sc.Bytes())
		}
		keys := []string{}
		for _, k := range l.Keys {
			if k != nil {
				keys = append(keys, *k)
			}
		}
		logs[l.Origin] = keys
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("witnessctl list-logs: %w", err)
	}
	return logs, nil
}

// witnessctl runs witnessctl's command with args on the witness's database
// and returns its standard output.
func (w *Witness) witnessctl(ctx context.Context, command string, args ...string) ([]byte, error) {
	args = append([]string{command, "-db", w.dbPath()}, args...)
	cmd := exec.CommandContext(ctx, w.bins.witnessctl, args...)
	cmd.Dir = w.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("witnessctl %s: %w: %s", command, err, lastBytes(stderr.Bytes(), 2048))
	}
	return out, nil
}

// Stop asks litewitness to shut down (SIGINT), then stops its ssh-agent,
// waiting for each and killing what remains of its process group. State
// stays in Dir. Stopping a stopped witness does nothing; Restart starts
// it again.
func (w *Witness) Stop() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.stop(); err != nil {
		return fmt.Errorf("witness %s: %w", w.Name, err)
	}
	return nil
}

// Kill kills litewitness and its ssh-agent with SIGKILL, as a crash would,
// and waits for them to exit. What litewitness had answered is committed
// in its database; Restart starts it again on it.
func (w *Witness) Kill() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for _, p := range []struct {
		name string
		p    **process
	}{{"litewitness", &w.server}, {"ssh-agent", &w.agent}} {
		if *p.p == nil {
			continue
		}
		if err := killGroup(*p.p); err != nil {
			errs = append(errs, fmt.Errorf("kill %s: %w", p.name, err))
		}
		*p.p = nil
	}
	w.removeAgentTmp()
	logf(w.log, "witness %s killed", w.Name)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("witness %s: %w", w.Name, err)
	}
	return nil
}

// Restart stops the witness if it runs and starts it again with the same
// key, port and database, returning when litewitness answers.
func (w *Witness) Restart(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.stop(); err != nil {
		return fmt.Errorf("witness %s: restart: %w", w.Name, err)
	}
	if err := w.start(ctx); err != nil {
		return fmt.Errorf("witness %s: restart: %w", w.Name, err)
	}
	return nil
}

// WitnessForTest starts a witness named name for tb in a directory under
// tb.TempDir(), and stops it when the test ends, logging the end of its
// log if the test failed. It builds the binaries first if needed. It does
// not skip in -short mode: callers decide.
func WitnessForTest(tb testing.TB, name string) *Witness {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testStartTimeout(tb))
	defer cancel()
	w, err := StartWitness(ctx, WitnessConfig{Name: name, Dir: tb.TempDir(), Log: tbWriter{tb}})
	if err != nil {
		tb.Fatalf("localstack: %v", err)
	}
	tb.Cleanup(func() {
		if err := w.Stop(); err != nil {
			tb.Errorf("localstack: %v", err)
		}
		if tb.Failed() {
			tb.Logf("localstack: end of %s:\n%s", w.LogFile(), tail(w.LogFile(), 8<<10))
			agentLog := filepath.Join(w.Dir, "ssh-agent.log")
			tb.Logf("localstack: end of %s:\n%s", agentLog, tail(agentLog, 2<<10))
		}
	})
	return w
}

func (w *Witness) dbPath() string { return filepath.Join(w.Dir, "litewitness.db") }

// start starts the ssh-agent, loads the key into it, and starts litewitness
// on it. w.mu is held.
func (w *Witness) start(ctx context.Context) error {
	begin := time.Now()
	if err := w.claimPort(); err != nil {
		return err
	}
	agent, sock, err := w.startAgent(ctx)
	if err != nil {
		return err
	}
	server, err := launch(procSpec{
		path: w.bins.litewitness,
		args: []string{
			"-name", w.Name,
			"-db", w.dbPath(),
			"-key", w.keyID,
			"-ssh-agent", sock,
			"-listen", "127.0.0.1:" + strconv.Itoa(w.port),
		},
		env:     environ(dropSSHEnv),
		dir:     w.Dir,
		logPath: w.LogFile(),
		stopSig: syscall.SIGINT, // litewitness shuts down on os.Interrupt only
	})
	if err != nil {
		return errors.Join(fmt.Errorf("litewitness: %w", err), w.stopAgent(agent))
	}
	if err := await(ctx, server, 30*time.Second, func(ctx context.Context) error {
		return httpReady(ctx, w.URL+"/")
	}); err != nil {
		err = fmt.Errorf("litewitness: %w\n--- end of %s:\n%s", err, w.LogFile(), tail(w.LogFile(), 2048))
		if stopErr := server.stop(stopTimeout); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop litewitness: %w", stopErr))
		}
		return errors.Join(err, w.stopAgent(agent))
	}
	w.server, w.agent = server, agent
	w.repickable = false // Restart keeps the port
	logf(w.log, "witness %s ready in %v at %s", w.Name, time.Since(begin).Round(time.Millisecond), w.URL)
	return nil
}

// claimPort makes sure nothing listens on the witness's port, which would
// answer the readiness check. A port picked for the first start that has
// been taken since is picked again, a few times.
func (w *Witness) claimPort() error {
	for attempt := 0; ; attempt++ {
		err := portsFree([]int{w.port})
		if err == nil {
			return nil
		}
		if !w.repickable || attempt == 3 {
			return err
		}
		logf(w.log, "witness %s: %v; picking another port", w.Name, err)
		w.port = 0
		if err := pickPorts([]*int{&w.port}); err != nil {
			return fmt.Errorf("pick port: %w", err)
		}
		w.URL = "http://127.0.0.1:" + strconv.Itoa(w.port)
	}
}

// startAgent starts an ssh-agent in the foreground on a socket in Dir (or
// in a directory of our own when Dir's path is too long for a socket) and
// loads the witness key into it.
func (w *Witness) startAgent(ctx context.Context) (p *process, sock string, err error) {
	sock = filepath.Join(w.Dir, "agent.sock")
	if len(sock) > maxSocketPath {
		if w.agentTmp, err = os.MkdirTemp("", "witness-agent-"); err != nil {
			return nil, "", fmt.Errorf("ssh-agent: %w", err)
		}
		sock = filepath.Join(w.agentTmp, "agent.sock")
	} else if exists(sock) {
		// Left by an agent that was killed; one that answers is another
		// witness's on this Dir.
		if err := dialUnix(ctx, sock); err == nil {
			return nil, "", fmt.Errorf("ssh-agent: %s already answers: is another witness running on %s?", sock, w.Dir)
		}
		if err := os.Remove(sock); err != nil {
			return nil, "", fmt.Errorf("ssh-agent: stale socket: %w", err)
		}
	}
	p, err = launch(procSpec{
		path:    w.bins.sshAgent,
		args:    []string{"-D", "-a", sock},
		env:     environ(dropSSHEnv),
		dir:     w.Dir,
		logPath: filepath.Join(w.Dir, "ssh-agent.log"),
		stopSig: syscall.SIGTERM, // removes its socket and exits
	})
	if err != nil {
		w.removeAgentTmp()
		return nil, "", fmt.Errorf("ssh-agent: %w", err)
	}
	if err := await(ctx, p, 10*time.Second, func(ctx context.Context) error { return dialUnix(ctx, sock) }); err != nil {
		log := filepath.Join(w.Dir, "ssh-agent.log")
		return nil, "", errors.Join(fmt.Errorf("ssh-agent: %w\n--- end of %s:\n%s", err, log, tail(log, 2048)), w.stopAgent(p))
	}
	add := exec.CommandContext(ctx, w.bins.sshAdd, w.keyPath)
	add.Dir = w.Dir
	add.Env = environ(dropSSHEnv, "SSH_AUTH_SOCK="+sock, "SSH_ASKPASS_REQUIRE=never")
	if out, err := add.CombinedOutput(); err != nil {
		return nil, "", errors.Join(fmt.Errorf("ssh-add: %w: %s", err, lastBytes(out, 2048)), w.stopAgent(p))
	}
	return p, sock, nil
}

// stop stops litewitness and then its agent, if they run. w.mu is held.
func (w *Witness) stop() error {
	if w.server == nil && w.agent == nil {
		w.removeAgentTmp()
		return nil
	}
	var errs []error
	if p := w.server; p != nil {
		w.server = nil
		if err := p.exitErr(); err != nil {
			logf(w.log, "witness %s: litewitness had exited on its own: %v (see %s)", w.Name, err, w.LogFile())
		}
		if err := p.stop(stopTimeout); err != nil {
			errs = append(errs, fmt.Errorf("stop litewitness: %w", err))
		}
	}
	if p := w.agent; p != nil {
		w.agent = nil
		errs = append(errs, w.stopAgent(p))
	}
	w.removeAgentTmp()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logf(w.log, "witness %s stopped", w.Name)
	return nil
}

// stopAgent stops the ssh-agent p and removes the socket directory of our
// own, if any.
func (w *Witness) stopAgent(p *process) error {
	defer w.removeAgentTmp()
	if err := p.stop(stopTimeout); err != nil {
		return fmt.Errorf("stop ssh-agent: %w", err)
	}
	return nil
}

func (w *Witness) removeAgentTmp() {
	if w.agentTmp != "" {
		os.RemoveAll(w.agentTmp)
		w.agentTmp = ""
	}
}

// ensureKey makes the witness's Ed25519 key with ssh-keygen if Dir has
// none yet, and returns its public key. The key is made under temporary
// names and renamed, public half first, so that a private key in Dir
// always has its public half.
func (w *Witness) ensureKey(ctx context.Context) (ed25519.PublicKey, error) {
	pubPath := w.keyPath + ".pub"
	if !exists(w.keyPath) {
		tmp := filepath.Join(w.Dir, ".witness.key.tmp")
		os.Remove(tmp)
		os.Remove(tmp + ".pub")
		cmd := exec.CommandContext(ctx, w.bins.sshKeygen, "-q", "-t", "ed25519", "-N", "", "-C", w.Name, "-f", tmp)
		cmd.Dir = w.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %w: %s", err, lastBytes(out, 2048))
		}
		if err := os.Rename(tmp+".pub", pubPath); err != nil {
			return nil, fmt.Errorf("witness key: %w", err)
		}
		if err := os.Rename(tmp, w.keyPath); err != nil {
			return nil, fmt.Errorf("witness key: %w", err)
		}
		logf(w.log, "witness %s: made key %s", w.Name, w.keyPath)
	}
	b, err := os.ReadFile(pubPath)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	pub, err := parseSSHEd25519(b)
	if err != nil {
		return nil, fmt.Errorf("witness key %s: %w", pubPath, err)
	}
	return pub, nil
}

// parseSSHEd25519 parses an OpenSSH public key line, "ssh-ed25519 BASE64
// [comment]", whose blob is the wire encoding of the string "ssh-ed25519"
// followed by the 32-byte key as a string (RFC 8709).
func parseSSHEd25519(line []byte) (ed25519.PublicKey, error) {
	f := strings.Fields(string(line))
	if len(f) < 2 || f[0] != "ssh-ed25519" {
		return nil, errors.New("not an ssh-ed25519 public key line")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	readString := func() ([]byte, bool) {
		if len(blob) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(blob)
		if uint64(len(blob)-4) < uint64(n) {
			return nil, false
		}
		s := blob[4 : 4+n]
		blob = blob[4+n:]
		return s, true
	}
	typ, ok1 := readString()
	key, ok2 := readString()
	if !ok1 || !ok2 || string(typ) != "ssh-ed25519" || len(key) != ed25519.PublicKeySize || len(blob) != 0 {
		return nil, errors.New("malformed ssh-ed25519 public key")
	}
	return ed25519.PublicKey(key), nil
}

// sshFingerprint returns OpenSSH's SHA256 fingerprint of an Ed25519 public
// key, "SHA256:" and the unpadded base64 of the SHA-256 of its wire
// encoding, which litewitness's -key names the agent's key by.
func sshFingerprint(pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("fingerprint: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	var blob []byte
	for _, s := range [][]byte{[]byte("ssh-ed25519"), pub} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(s)))
		blob = append(blob, s...)
	}
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), nil
}

// algCosignatureV1 is the signed-note key type of an Ed25519
// cosignature/v1 key (c2sp.org/tlog-cosignature).
const algCosignatureV1 = 0x04

// cosignatureV1VerifierKey returns the c2sp.org/signed-note verifier key of
// the cosignature/v1 key pub named name: name+HASH+BASE64, where BASE64
// encodes 0x04||pub and HASH is the hex of the first 4 bytes of
// SHA-256(name || "\n" || 0x04 || pub).
func cosignatureV1VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if !validNoteName(name) {
		return "", fmt.Errorf("verifier key: invalid name %q", name)
	}
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("verifier key: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	key := append([]byte{algCosignatureV1}, pub...)
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(key)
	return name + "+" + hex.EncodeToString(h.Sum(nil)[:4]) + "+" + base64.StdEncoding.EncodeToString(key), nil
}

// validNoteName reports whether name can name a signed-note key:
// non-empty UTF-8 without Unicode spaces or '+'.
func validNoteName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// dropSSHEnv drops the variables that would point OpenSSH's tools at the
// user's own agent.
func dropSSHEnv(k string) bool {
	return k == "SSH_AUTH_SOCK" || k == "SSH_AGENT_PID"
}

// dialUnix reports whether something accepts connections on the Unix
// socket at path.
func dialUnix(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return err
	}
	return conn.Close()
}

// killGroup kills p's process group with SIGKILL and waits for p to be
// reaped.
func killGroup(p *process) error {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // ESRCH when gone
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pid %d still running after SIGKILL", p.cmd.Process.Pid)
	}
}

// agentBinary returns the ssh-agent at path or, when it is set-user-ID or
// set-group-ID (Debian's is set-group-ID _ssh), a copy of it without those
// bits in the binary cache. Exec'ing such a program changes the child's
// effective IDs, which makes the kernel clear its parent-death signal, so
// the agent would outlive a killed test binary. The copy is named by the
// original's SHA-256, so an upgraded ssh-agent is copied again.
func agentBinary(ctx context.Context, cacheDir string, log io.Writer, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("ssh-agent: %w", err)
	}
	if fi.Mode()&(os.ModeSetuid|os.ModeSetgid) == 0 {
		return path, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("ssh-agent: %w", err)
	}
	sum := sha256.Sum256(b)
	return cachedBinary(ctx, cacheDir, log, "ssh-agent", "copy-"+hex.EncodeToString(sum[:6]), "a moment", func(tmp string) *exec.Cmd {
		return exec.CommandContext(ctx, "install", "-m", "0755", path, filepath.Join(tmp, "ssh-agent"))
	})
}

// ensureOpenSSH installs OpenSSH's client tools (Debian's openssh-client)
// with apt-get when one of sshTools is missing and we are root, under the
// binary cache's lock so that parallel test binaries do not race on dpkg.
func ensureOpenSSH(ctx context.Context, cacheDir string, log io.Writer) error {
	missing := func() []string {
		var m []string
		for _, t := range sshTools {
			if _, err := exec.LookPath(t); err != nil {
				m = append(m, t)
			}
		}
		return m
	}
	if len(missing()) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("witness: %v not installed; install them, e.g. apt-get install -y openssh-client", missing())
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("witness: %v not installed and no apt-get: %w", missing(), err)
	}
	binDir := filepath.Join(cacheDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return fmt.Errorf("binary cache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(binDir, ".lock"), log)
	if err != nil {
		return err
	}
	defer unlock()
	if len(missing()) == 0 { // installed while we waited
		return nil
	}
	logf(log, "installing openssh-client with apt-get (once)...")
	for _, args := range [][]string{
		{"update"},
		{"install", "-y", "--no-install-recommends", "openssh-client"},
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = environ(nil, "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("install openssh-client: apt-get %s: %w\n%s", args[0], err, lastBytes(out, 4096))
		}
	}
	if m := missing(); len(m) > 0 {
		return fmt.Errorf("install openssh-client: still no %v on PATH", m)
	}
	return nil
}
