package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/tapproof/tapproof/anchor"
	"github.com/tapproof/tapproof/witness"
)

func newVerifyCmd() *cobra.Command {
	var (
		logKey, deviceKey, policyFile string
		labKeys                       []string
	)
	cmd := &cobra.Command{
		Use:   "verify --log-key KEY [--witness-policy FILE] [--lab-key LAB=KEY]... BUNDLE",
		Short: "Verify an offline bundle of a reading or lab sample (file, or - for standard input)",
		Long: `Verify an offline bundle of a reading or of a lab sample, trusting nothing
from the server it came from. Every alert's notice, CAP document and feed
entry links the bundle of the reading or lab sample it is about.

It checks, in order: that the checkpoint is signed by the log key; that the
leaf is included in the tree the checkpoint commits to; and that the reading
is signed by the device. The device key is taken from --device-key, or else
from the device's enrollment, which must itself be proven in the same log at
an earlier index. A lab sample (GET /v1/logs/{log}/leaves/{index}/bundle)
must be signed by a key of its lab given with --lab-key LAB=BASE64 (one flag
per key), the keys the state publishes: labs are not enrolled in the log.
Without --lab-key a lab sample's signature is not checked, and the output
says so. With --witness-policy, the checkpoint must also carry the
cosignatures of the witnesses the policy asks for: independent parties that
checked it extends every checkpoint of the log they saw before, so that the
log cannot show you one history and others another. Exit status 0 means
every check made passed; 1 names the check that failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if logKey == "" {
				return errors.New("--log-key is required: the note verifier key of the log (GET /v1/logs lists them)")
			}
			v, err := note.NewVerifier(strings.TrimSpace(logKey))
			if err != nil {
				return fmt.Errorf("--log-key: %w", err)
			}
			var dk ed25519.PublicKey
			if deviceKey != "" {
				b, err := base64.StdEncoding.DecodeString(deviceKey)
				if err != nil || len(b) != ed25519.PublicKeySize {
					return errors.New("--device-key: want the base64 Ed25519 public key (GET /v1/devices lists them)")
				}
				dk = b
			}
			ks, err := complianceKeys("", labKeys, nil)
			if err != nil {
				return err
			}
			var policy *witness.Policy
			if policyFile != "" {
				if policy, err = witness.ReadPolicyFile(policyFile); err != nil {
					return fmt.Errorf("--witness-policy: %w", err)
				}
			}
			raw, err := readInput(cmd.InOrStdin(), args[0])
			if err != nil {
				return err
			}
			var b anchor.Bundle
			if err := json.Unmarshal(raw, &b); err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "FAIL bundle: not a tapproof bundle: %v\n", err)
				return exitWrong
			}
			res, err := anchor.VerifyEntry(cmd.Context(), &b, v, anchor.Keys{Device: dk, Labs: ks.Labs})
			if err != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "FAIL %v\n", err)
				return exitWrong
			}
			if policy != nil {
				if err := policy.Check(res.Checkpoint); err != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "FAIL witnesses check failed: %v\n", err)
					return exitWrong
				}
			}
			out := cmd.OutOrStdout()
			if s := res.LabSample; s != nil {
				fmt.Fprintf(out, "OK lab sample %s: %s %g %s collected at %s, site %s, utility %s, period %s\n",
					s.Key(), s.Analyte, s.Value, s.Unit, s.CollectedAt.Format("2006-01-02T15:04:05Z07:00"), s.Site, s.Utility, s.Period)
			} else {
				r := res.Reading
				fmt.Fprintf(out, "OK reading %s seq %d: %s %g %s at %s, site %s, utility %s\n",
					r.Device, r.Seq, r.Analyte, r.Value, r.Unit, r.SampledAt.Format("2006-01-02T15:04:05Z07:00"), r.Site, r.Utility)
			}
			fmt.Fprintf(out, "   is leaf %d of %s, in the tree of size %d the log signed\n", res.Index, res.Origin, res.Size)
			switch s := res.LabSample; {
			case s != nil && res.LabSignatureChecked:
				fmt.Fprintf(out, "   and is signed by lab %s, with a key given by --lab-key\n", s.Lab)
			case s != nil:
				fmt.Fprintf(out, "   but its signature was NOT CHECKED: give --lab-key %s=BASE64, the lab's key as the state publishes it, to check that lab %s signed it\n", s.Lab, s.Lab)
			}
			if policy != nil {
				fmt.Fprintf(out, "   %s\n", cosigners(policy, res.Checkpoint))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&logKey, "log-key", "", "the log's note verifier key ($TAPPROOF_LOG_KEY)")
	cmd.Flags().StringVar(&policyFile, "witness-policy", "", "witness policy the checkpoint's cosignatures must meet ($TAPPROOF_WITNESS_POLICY)")
	cmd.Flags().StringVar(&deviceKey, "device-key", "", "the device's base64 Ed25519 public key; default: from the enrollment in the bundle")
	cmd.Flags().StringArrayVar(&labKeys, "lab-key", nil, "LAB=BASE64: a key of a certified lab, for a lab sample's bundle (repeatable); without it a lab sample's signature is not checked")
	return cmd
}

// cosigners says which of policy's witnesses cosigned the signed
// checkpoint, which meets the policy.
func cosigners(policy *witness.Policy, signed []byte) string {
	var names []string
	for _, w := range policy.Witnesses() {
		if witness.Cosigned(signed, w.Verifier) {
			names = append(names, w.Name)
		}
	}
	if len(names) == 0 {
		return "and the witness policy asks for no cosignature"
	}
	return "and the checkpoint is cosigned by " + strings.Join(names, ", ") + ", as the witness policy asks"
}

func readInput(stdin io.Reader, name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(stdin, 16<<20))
	}
	return os.ReadFile(name)
}
