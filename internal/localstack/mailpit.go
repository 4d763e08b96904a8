package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MailpitVersion is the mailpit release MailpitForTest builds and runs: a
// real SMTP server with an HTTP API to read what it received.
const MailpitVersion = "v1.27.11"

// MailpitBinary returns the cached mailpit binary, building it (about a
// minute, once) into cacheDir/bin/mailpit-VERSION if missing; cacheDir ""
// is $TAPPROOF_CACHE or os.UserCacheDir()/tapproof. It takes the same file
// lock as the other builds.
func MailpitBinary(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	return cachedBinary(ctx, cacheDir, log, "mailpit", MailpitVersion, "about a minute", func(tmp string) *exec.Cmd {
		cmd := goCommand(ctx, "install", "github.com/axllent/mailpit@"+MailpitVersion)
		cmd.Env = append(cmd.Env, "GOBIN="+tmp, "GOWORK=off")
		cmd.Dir = os.TempDir() // outside any module
		return cmd
	})
}

// cachedBinary returns cacheDir/bin/NAME-VERSION/NAME, building it with the
// command cmd makes (into a temporary directory) if it is missing, under
// the same file lock as the other builds; cacheDir "" is $TAPPROOF_CACHE or
// os.UserCacheDir()/tapproof.
func cachedBinary(ctx context.Context, cacheDir string, log io.Writer, name, version, takes string, cmd func(tmp string) *exec.Cmd) (string, error) {
	if cacheDir == "" {
		var err error
		if cacheDir, err = DefaultCacheDir(); err != nil {
			return "", err
		}
	}
	binDir := filepath.Join(cacheDir, "bin")
	dir := filepath.Join(binDir, name+"-"+version)
	bin := filepath.Join(dir, name)
	if exists(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("binary cache: %w", err)
	}
	unlock, err := lock(ctx, filepath.Join(binDir, ".lock"), log)
	if err != nil {
		return "", err
	}
	defer unlock()
	if exists(bin) { // built while we waited
		return bin, nil
	}
	if err := build(ctx, log, dir, name+" "+version, takes, cmd); err != nil {
		return "", err
	}
	return bin, nil
}

// Mailpit is a running mailpit on loopback.
type Mailpit struct {
	// SMTPHost and SMTPPort accept mail without TLS or authentication.
	SMTPHost string
	SMTPPort int
	// API is the base URL of the HTTP API, e.g. http://127.0.0.1:PORT.
	API string
	cmd *exec.Cmd
}

// MailpitConfig chooses mailpit's ports; zero picks free ones.
type MailpitConfig struct {
	SMTPPort int
	HTTPPort int
}

// MailpitForTest starts mailpit for tb on loopback and stops it when the
// test ends. It builds mailpit first if needed. cfg may be nil.
func MailpitForTest(tb testing.TB, cfg *MailpitConfig) *Mailpit {
	tb.Helper()
	if cfg == nil {
		cfg = &MailpitConfig{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testStartTimeout(tb))
	defer cancel()
	bin, err := MailpitBinary(ctx, "", tbWriter{tb})
	if err != nil {
		tb.Fatalf("mailpit: %v", err)
	}
	if err := pickPorts([]*int{&cfg.SMTPPort, &cfg.HTTPPort}); err != nil {
		tb.Fatalf("mailpit: %v", err)
	}
	dir := tb.TempDir()
	m := &Mailpit{SMTPHost: "127.0.0.1", SMTPPort: cfg.SMTPPort, API: "http://127.0.0.1:" + strconv.Itoa(cfg.HTTPPort)}
	logFile, err := os.Create(filepath.Join(dir, "mailpit.log"))
	if err != nil {
		tb.Fatalf("mailpit: %v", err)
	}
	m.cmd = exec.Command(bin,
		"--listen", "127.0.0.1:"+strconv.Itoa(cfg.HTTPPort),
		"--smtp", "127.0.0.1:"+strconv.Itoa(cfg.SMTPPort),
		"--database", filepath.Join(dir, "mailpit.db"),
		"--smtp-disable-rdns", "--disable-version-check")
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	m.cmd.SysProcAttr = sysProcAttr(syscall.SIGKILL)
	if err := m.cmd.Start(); err != nil {
		tb.Fatalf("mailpit: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-done
		logFile.Close()
		if tb.Failed() {
			tb.Logf("mailpit log:\n%s", tail(logFile.Name(), 8<<10))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := httpReady(ctx, m.API+"/readyz")
		if err == nil {
			err = dialReady(ctx, fmt.Sprintf("127.0.0.1:%d", cfg.SMTPPort))
		}
		if err == nil {
			return m
		}
		select {
		case <-done:
			tb.Fatalf("mailpit exited: %s", tail(logFile.Name(), 4<<10))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mailpit not ready after 30s: %v", err)
		}
	}
}

// MailpitMessage is a message as mailpit's API lists and returns it.
type MailpitMessage struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Text string `json:"Text"` // only from Message
}

// Search returns the messages matching query (mailpit search syntax, e.g.
// "to:someone@example.org"), newest first, without their text.
func (m *Mailpit) Search(ctx context.Context, query string) ([]MailpitMessage, error) {
	var out struct {
		Messages []MailpitMessage `json:"messages"`
	}
	err := m.get(ctx, "/api/v1/search?query="+url.QueryEscape(query), &out)
	return out.Messages, err
}

// Message returns the message with id, with its text.
func (m *Mailpit) Message(ctx context.Context, id string) (MailpitMessage, error) {
	var out MailpitMessage
	err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id), &out)
	return out, err
}

// Wait returns, with its text, the newest message to address whose subject
// contains subject, polling until one arrives or ctx is done.
func (m *Mailpit) Wait(ctx context.Context, address, subject string) (MailpitMessage, error) {
	for {
		list, err := m.Search(ctx, "to:"+address)
		if err == nil {
			for _, msg := range list {
				if strings.Contains(msg.Subject, subject) {
					return m.Message(ctx, msg.ID)
				}
			}
		}
		select {
		case <-ctx.Done():
			return MailpitMessage{}, fmt.Errorf("no message to %s about %q (%d messages to it; last error %v): %w", address, subject, len(list), err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Headers returns the headers of the message with id.
func (m *Mailpit) Headers(ctx context.Context, id string) (map[string][]string, error) {
	var out map[string][]string
	err := m.get(ctx, "/api/v1/message/"+url.PathEscape(id)+"/headers", &out)
	return out, err
}

func (m *Mailpit) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.API+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("mailpit: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("mailpit GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
