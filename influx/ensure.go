package influx

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// EnsureDatabase creates database name on an InfluxDB 1.x server at baseURL
// (POST /query, CREATE DATABASE), which is harmless if it exists. name may
// be "db/rp"; only db is created, the retention policy must exist already.
// token is "user:password" or empty, as in Config. InfluxDB 2.x and 3.x
// buckets are created with their own tools, not with EnsureDatabase.
func EnsureDatabase(ctx context.Context, baseURL, token, name string) error {
	db, _, _ := strings.Cut(name, "/")
	if db == "" {
		return fmt.Errorf("influx create database: empty name")
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return fmt.Errorf("influx create database: bad URL: %w", err)
	}
	u = u.JoinPath("query")
	form := url.Values{"q": {"CREATE DATABASE " + quoteIdent(db)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("influx create database: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	SetAuth(req, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("influx create database: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("influx create database: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("influx create database: status %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	var out struct {
		Error   string `json:"error"`
		Results []struct {
			Error string `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return fmt.Errorf("influx create database: decoding response: %w", err)
	}
	if out.Error != "" {
		return fmt.Errorf("influx create database: %s", out.Error)
	}
	for _, r := range out.Results {
		if r.Error != "" {
			return fmt.Errorf("influx create database: %s", r.Error)
		}
	}
	return nil
}

// SetAuth authenticates req with token, as Config.Token gives it: basic
// auth for "user:password" (InfluxDB 1.8), the v2 "Token" scheme otherwise,
// nothing if empty.
func SetAuth(req *http.Request, token string) {
	if token == "" {
		return
	}
	if user, pass, ok := strings.Cut(token, ":"); ok {
		req.SetBasicAuth(user, pass)
		return
	}
	req.Header.Set("Authorization", "Token "+token)
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
