package main

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestBindEnv: a flag takes its TAPPROOF_* variable unless given on the
// command line, and a value that does not parse is an error naming the
// variable, not a silent default.
func TestBindEnv(t *testing.T) {
	newFlags := func() (*pflag.FlagSet, *string, *int) {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		data := fs.String("data", "tapproof-data", "data directory ($TAPPROOF_DATA)")
		port := fs.Int("smtp-port", 587, "SMTP port ($TAPPROOF_SMTP_PORT)")
		return fs, data, port
	}
	t.Setenv("TAPPROOF_DATA", "/var/lib/tapproof")
	t.Setenv("TAPPROOF_SMTP_PORT", "2525")
	fs, data, port := newFlags()
	if err := bindEnv(fs); err != nil {
		t.Fatal(err)
	}
	if *data != "/var/lib/tapproof" || *port != 2525 {
		t.Errorf("from the environment: data %q, smtp-port %d", *data, *port)
	}

	fs, data, _ = newFlags()
	if err := fs.Parse([]string{"--data", "here"}); err != nil {
		t.Fatal(err)
	}
	if err := bindEnv(fs); err != nil || *data != "here" {
		t.Errorf("the command line must win: data %q, error %v", *data, err)
	}

	t.Setenv("TAPPROOF_SMTP_PORT", "five-eight-seven")
	fs, _, _ = newFlags()
	if err := bindEnv(fs); err == nil || !strings.Contains(err.Error(), "$TAPPROOF_SMTP_PORT") {
		t.Errorf("a port that does not parse: error %v, want one naming $TAPPROOF_SMTP_PORT", err)
	}
}
