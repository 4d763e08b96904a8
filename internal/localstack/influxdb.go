package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// influxConfig is influxd's configuration; the %s verbs take quoted strings.
const influxConfig = `# Written by localstack on every start.
reporting-disabled = true
bind-address = %[1]s

[meta]
  dir = %[2]s
  logging-enabled = false

[data]
  dir = %[3]s
  wal-dir = %[4]s
  query-log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  log-enabled = false

[http]
  bind-address = %[5]s
  flux-enabled = true
  log-enabled = false
`

// influxStartTimeout bounds influxd's start; the first start on a fresh
// directory has taken about 13 s on two busy cores.
const influxStartTimeout = 2 * time.Minute

// startInfluxDB writes Dir/influxdb/influxdb.conf, runs influxd, waits for
// /ping and creates the database.
func (s *Stack) startInfluxDB(ctx context.Context) (*process, error) {
	base := filepath.Join(s.Dir, "influxdb")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	q := strconv.Quote // Go quoting is valid TOML for these strings
	conf := fmt.Sprintf(influxConfig,
		q(fmt.Sprintf("127.0.0.1:%d", s.cfg.InfluxRPCPort)),
		q(filepath.Join(base, "meta")),
		q(filepath.Join(base, "data")),
		q(filepath.Join(base, "wal")),
		q(fmt.Sprintf("127.0.0.1:%d", s.cfg.InfluxPort)),
	)
	confPath := filepath.Join(base, "influxdb.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := s.launch(InfluxDB, procSpec{
		path: s.bins.influxd,
		args: []string{"run", "-config", confPath},
		// INFLUXDB_* variables would override the file.
		env:     environ(func(k string) bool { return strings.HasPrefix(k, "INFLUXDB_") }),
		stopSig: syscall.SIGTERM,
	})
	if err != nil {
		return nil, err
	}
	err = s.await(ctx, InfluxDB, p, influxStartTimeout, func(ctx context.Context) error {
		return httpReady(ctx, s.InfluxURL+"/ping")
	})
	if err != nil {
		return nil, err
	}
	if err := influxQuery(ctx, s.InfluxURL, "CREATE DATABASE "+quoteIdent(s.InfluxDatabase)); err != nil {
		p.stop(stopTimeout)
		return nil, fmt.Errorf("create database: %w", err)
	}
	return p, nil
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// influxQuery runs one InfluxQL statement through POST /query and reports
// its error, if any.
func influxQuery(ctx context.Context, base, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query",
		strings.NewReader(url.Values{"q": {stmt}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var r struct {
		Error   string
		Results []struct{ Error string }
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	if r.Error != "" {
		return errors.New(r.Error)
	}
	for _, res := range r.Results {
		if res.Error != "" {
			return errors.New(res.Error)
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}
