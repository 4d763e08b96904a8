package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/witness"
)

// complianceMaxInput bounds the leaves file or response read, in bytes.
const complianceMaxInput = 1 << 30

func newComplianceCmd() *cobra.Command {
	var (
		p                      compliance.Params
		jurisdiction, analyte  string
		rounding, leaves, keys string
		logServer, logKey      string
		policyFile             string
		labKeys, reviewerKeys  []string
		asJSON                 bool
	)
	cmd := &cobra.Command{
		Use:   "compliance --utility ID --period 2026H2 (--log URL --log-key KEY | --leaves FILE|URL|-) --rounding RULE [--lab-key LAB=KEY]... [--reviewer-key ID=KEY]...",
		Short: "Compute a monitoring period's 90th percentile and action level exceedance from the log",
		Long: `Compute a water system's lead (or copper) compliance for a monitoring period
from the entries of its log alone, following 40 CFR 141.80(c)(3): the
samples, the exclusions by state reviewers' invalidations, the 90th
percentile, the rule and action level in force, and whether it is exceeded.

--log reads the utility's whole log back from a tapproof API and checks every
leaf against the latest checkpoint, whose signature --log-key must verify: no
entry can have been left out. --leaves instead takes entries as JSON lines,
{"index":N,"leaf":"<base64>"}, from a file, a URL (such as
/v1/compliance/{utility}/leaves, which serves only the compliance entries) or
standard input (-); nothing then shows that none is missing. A lab sample counts only if signed by a
key of its lab, an invalidation applies only if signed by a key of its
reviewer: give the keys with --lab-key and --reviewer-key (LAB=BASE64, one
flag per key) or --keys, a JSON file {"labs":{"LAB":["BASE64"]},
"reviewers":{"ID":["BASE64"]}}. An invalidation by any other key is listed
as not applied, and its sample still counts.

--rounding is the state's rule for a fractional rank 0.9 × n: half-up,
half-even or up; it is printed with the result.

The report ends with the notices the results call for: the Tier 1 public
notice of an exceedance and a consumer notice per sample above the action
level, each with the record of it in the log (when the alert was raised,
when the notice went out, to how many recipients) and whether it met its
deadline (--tier1-within, --consumer-notice-within). A notice with no record
among the entries given is listed as such.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if p.Rounding, err = compliance.ParseRounding(rounding); err != nil {
				return fmt.Errorf("--rounding: %w", err)
			}
			p.Analyte = tapproof.Analyte(analyte)
			p.Rules = tapproof.RuleBook{Jurisdictions: map[string]tapproof.Jurisdiction{p.Utility: tapproof.Jurisdiction(jurisdiction)}}
			if (leaves == "") == (logServer == "") {
				return errors.New("give --log URL --log-key KEY to read the whole log back, or --leaves: a file, URL or - of JSON lines {\"index\":N,\"leaf\":\"<base64>\"}")
			}
			ks, err := complianceKeys(keys, labKeys, reviewerKeys)
			if err != nil {
				return err
			}
			var (
				ls []tapproof.Leaf
				cp []byte
			)
			if logServer != "" {
				if logKey == "" {
					return errors.New("--log needs --log-key: the log's note verifier key, obtained out of band")
				}
				v, err := note.NewVerifier(strings.TrimSpace(logKey))
				if err != nil {
					return fmt.Errorf("--log-key: %w", err)
				}
				var policy *witness.Policy
				if policyFile != "" {
					if policy, err = witness.ReadPolicyFile(policyFile); err != nil {
						return fmt.Errorf("--witness-policy: %w", err)
					}
				}
				if ls, cp, err = readLog(cmd.Context(), logServer, p.Utility, v); err != nil {
					return err
				}
				if policy != nil {
					if err := policy.Check(cp); err != nil {
						return fmt.Errorf("log %s: its checkpoint: %w", p.Utility, err)
					}
				}
			} else {
				raw, err := complianceInput(cmd, leaves)
				if err != nil {
					return err
				}
				defer raw.Close()
				if ls, err = compliance.ReadLeaves(io.LimitReader(raw, complianceMaxInput)); err != nil {
					return err
				}
			}
			rep, err := compliance.FromLeaves(cmd.Context(), ls, ks, p)
			if err != nil {
				return fmt.Errorf("compliance: %w", err)
			}
			rep.Checkpoint = string(cp)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Utility, "utility", "", "utility (water system) id")
	f.StringVar(&p.Period, "period", "", "monitoring period: YYYYH1, YYYYH2, YYYY or YYYY-YYYY")
	f.StringVar(&jurisdiction, "jurisdiction", string(tapproof.Federal), "the utility's jurisdiction: US, or a state such as US-MI")
	f.StringVar(&analyte, "analyte", string(tapproof.Lead), "lead or copper")
	f.StringVar(&rounding, "rounding", string(compliance.HalfUp), "rounding of a fractional rank: half-up, half-even or up")
	f.StringVar(&leaves, "leaves", "", "log entries as JSON lines: a file, an http(s) URL, or - for standard input")
	f.StringVar(&logServer, "log", "", "instead of --leaves, a tapproof API (http://HOST:8480) to read the utility's whole log back from, checked against its latest checkpoint")
	f.StringVar(&logKey, "log-key", "", "with --log, the log's note verifier key ($TAPPROOF_LOG_KEY)")
	f.StringVar(&policyFile, "witness-policy", "", "with --log, a witness policy the checkpoint's cosignatures must meet ($TAPPROOF_WITNESS_POLICY)")
	f.StringArrayVar(&labKeys, "lab-key", nil, "a certified lab's key, LAB=BASE64 Ed25519 public key (repeatable)")
	f.StringArrayVar(&reviewerKeys, "reviewer-key", nil, "a state reviewer's key, ID=BASE64 Ed25519 public key (repeatable)")
	f.StringVar(&keys, "keys", "", `JSON file of keys: {"labs":{"LAB":["BASE64"]},"reviewers":{"ID":["BASE64"]}}`)
	f.DurationVar(&p.Deadlines.Tier1, "tier1-within", compliance.DefaultNoticeDeadlines.Tier1, "deadline of the Tier 1 public notice of an action level exceedance, from the alert")
	f.DurationVar(&p.Deadlines.Individual, "consumer-notice-within", compliance.DefaultNoticeDeadlines.Individual, "deadline of the consumer notice of an individual result above the action level, from the alert")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	for _, name := range []string{"utility", "period"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// complianceKeys builds the key set from a --keys file and the key flags.
func complianceKeys(file string, labs, reviewers []string) (compliance.KeySet, error) {
	ks := compliance.KeySet{Labs: map[string][]ed25519.PublicKey{}, Reviewers: map[string][]ed25519.PublicKey{}}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return ks, fmt.Errorf("--keys: %w", err)
		}
		var fromFile compliance.KeySet
		if err := json.Unmarshal(b, &fromFile); err != nil {
			return ks, fmt.Errorf("--keys %s: %w", file, err)
		}
		for _, m := range []struct {
			from, to map[string][]ed25519.PublicKey
		}{{fromFile.Labs, ks.Labs}, {fromFile.Reviewers, ks.Reviewers}} {
			for id, keys := range m.from {
				m.to[id] = append(m.to[id], keys...)
			}
		}
	}
	for _, m := range []struct {
		flag string
		kvs  []string
		to   map[string][]ed25519.PublicKey
	}{{"--lab-key", labs, ks.Labs}, {"--reviewer-key", reviewers, ks.Reviewers}} {
		for _, kv := range m.kvs {
			id, b64, ok := strings.Cut(kv, "=")
			k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if !ok || !tapproof.ValidID(id) || err != nil || len(k) != ed25519.PublicKeySize {
				return ks, fmt.Errorf("%s %q: want ID=BASE64, the id and the base64 Ed25519 public key", m.flag, kv)
			}
			m.to[id] = append(m.to[id], ed25519.PublicKey(k))
		}
	}
	return ks, ks.Validate()
}

// complianceInput opens the leaves: a file, an http(s) URL or standard input.
func complianceInput(cmd *cobra.Command, name string) (io.ReadCloser, error) {
	switch {
	case name == "-":
		return io.NopCloser(cmd.InOrStdin()), nil
	case strings.HasPrefix(name, "http://"), strings.HasPrefix(name, "https://"):
		req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, name, nil)
		if err != nil {
			return nil, fmt.Errorf("--leaves: %w", err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("--leaves: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("--leaves: GET %s: %s", name, resp.Status)
		}
		return resp.Body, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("--leaves: %w", err)
	}
	return f, nil
}
