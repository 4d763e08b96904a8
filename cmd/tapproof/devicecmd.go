package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/httpapi"
	"github.com/tapproof/tapproof/platform"
	"github.com/tapproof/tapproof/signed"
)

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Generate device keys, enroll and revoke devices"}
	cmd.AddCommand(newDeviceNewCmd(), newDeviceEnrollCmd(), newDeviceRevokeCmd())
	return cmd
}

func newDeviceNewCmd() *cobra.Command {
	var d tapproof.Device
	var kind, keyFile, out, caFile string
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Create a device key (if --key does not exist), its broker credentials and its signed enrollment",
		Long: `Create everything a device needs: its Ed25519 key, the same key as a NATS
nkey seed for the broker, the broker's CA certificate, and its enrollment,
signed by that key.

The private key is written to --key (PKCS#8 PEM, mode 0600) unless the file
exists, in which case it is reused. Next to it go KEY.nk, the same key as
a NATS user nkey seed (mode 0600), which is the device's broker credential
(nats --nkey KEY.nk), and, with --ca, the broker's CA certificate as
ca.pem. The enrollment envelope is appended to --out (one JSON envelope per
line, the format 'serve --devices' loads), or printed. Enroll it into a
running tapproof with 'tapproof device enroll': only then does the broker
let the device connect. docs/devices.md is the wire contract.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := loadOrCreateKey(keyFile)
			if err != nil {
				return err
			}
			seed, err := broker.UserSeed(key)
			if err != nil {
				return err
			}
			if err := os.WriteFile(keyFile+".nk", append(seed, '\n'), 0o600); err != nil {
				return fmt.Errorf("device nkey: %w", err)
			}
			if caFile != "" {
				ca, err := os.ReadFile(caFile)
				if err != nil {
					return fmt.Errorf("broker ca: %w", err)
				}
				if err := os.WriteFile(filepath.Join(filepath.Dir(keyFile), "ca.pem"), ca, 0o644); err != nil {
					return fmt.Errorf("broker ca: %w", err)
				}
			}
			d.Kind = tapproof.Method(kind)
			d.PublicKey = key.Public().(ed25519.PublicKey)
			d.Status = tapproof.DeviceActive
			d.EnrolledAt = time.Now().UTC().Truncate(time.Second)
			if err := d.Validate(); err != nil {
				return err
			}
			if err := d.Enrollable(); err != nil {
				return err
			}
			env, err := signed.SignEnrollment(cmd.Context(), key, d.Enrollment())
			if err != nil {
				return err
			}
			env = append(env, '\n')
			if out == "" {
				_, err = cmd.OutOrStdout().Write(env)
				return err
			}
			f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			if _, err := f.Write(env); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&d.ID, "id", "", "device id (lower-case letters, digits, hyphens)")
	f.StringVar(&d.Utility, "utility", "", "utility (water system) id")
	f.StringVar(&d.Site, "site", "", "sampling site id")
	f.StringVar(&kind, "kind", string(tapproof.ASV), "ASV, fluorescence or NIRS (a certified lab is not a device: it signs lab samples with its lab key)")
	f.StringVar(&d.Firmware, "firmware", "", "SHA-256 of the device firmware, 64 hex digits")
	f.StringVar(&keyFile, "key", "", "private key file to create or reuse (required)")
	f.StringVar(&out, "out", "", "append the signed enrollment to this file instead of printing it")
	f.StringVar(&caFile, "ca", "", "the broker's CA certificate, copied next to the key as ca.pem (the demo's: <data>/tapproof/broker/ca.pem)")
	for _, n := range []string{"id", "utility", "site", "firmware", "key"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
			return nil, fmt.Errorf("device key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("device key %s: not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("device key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("device key %s: not Ed25519", path)
	}
	return key, nil
}

func newDeviceEnrollCmd() *cobra.Command {
	var server string
	cmd := &cobra.Command{
		Use:   "enroll ENROLLMENTS",
		Short: "Enroll devices into a running tapproof (needs TAPPROOF_ADMIN_TOKEN)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := os.Getenv("TAPPROOF_ADMIN_TOKEN")
			if token == "" {
				return errors.New("TAPPROOF_ADMIN_TOKEN is not set")
			}
			envs, err := platform.ReadEnrollments(args[0])
			if err != nil {
				return err
			}
			c := &httpapi.Client{BaseURL: server, Token: token}
			for _, env := range envs {
				if err := c.Enroll(cmd.Context(), env); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled %d device(s)\n", len(envs))
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "http://127.0.0.1:8480", "tapproof HTTP API ($TAPPROOF_SERVER)")
	return cmd
}

func newDeviceRevokeCmd() *cobra.Command {
	var server, id, reason string
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "Revoke a device: recorded in its log, its readings refused, its broker connections closed (needs TAPPROOF_ADMIN_TOKEN)",
		Long: `Revoke a device. The revocation, with --reason, is appended to the device's
utility log like its enrollment, so a regulator sees when and why it stopped
counting. From then on its readings are rejected (device_disabled), the
broker refuses its connections and closes the ones it has. The reason is
public: say why, never who lives where. Revocation cannot be undone; a
replacement device is enrolled under a new id.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token := os.Getenv("TAPPROOF_ADMIN_TOKEN")
			if token == "" {
				return errors.New("TAPPROOF_ADMIN_TOKEN is not set")
			}
			c := &httpapi.Client{BaseURL: server, Token: token}
			if err := c.Revoke(cmd.Context(), id, reason); err != nil {
				return fmt.Errorf("revoke %s: %w", id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "http://127.0.0.1:8480", "tapproof HTTP API ($TAPPROOF_SERVER)")
	f.StringVar(&id, "id", "", "device id (required)")
	f.StringVar(&reason, "reason", "", "why, recorded in the public log (required)")
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("reason")
	return cmd
}
