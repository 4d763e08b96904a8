package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/signed"
	"github.com/tapproof/tapproof/simulate"
)

func newDeviceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Generate device keys and enroll devices"}
	cmd.AddCommand(newDeviceNewCmd(), newDeviceEnrollCmd())
	return cmd
}

func newDeviceNewCmd() *cobra.Command {
	var d tapproof.Device
	var kind, keyFile, out string
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Create a device key (if --key does not exist) and write its signed enrollment",
		Long: `Create a device's Ed25519 key and its enrollment, signed by that key.

The private key is written to --key (PKCS#8 PEM, mode 0600) unless the file
exists, in which case it is reused. The enrollment envelope is appended to
--out (one JSON envelope per line, the format 'serve --devices' loads), or
printed. Enroll it into a running tapproof with 'tapproof device enroll'.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := loadOrCreateKey(keyFile)
			if err != nil {
				return err
			}
			d.Kind = tapproof.Method(kind)
			d.PublicKey = key.Public().(ed25519.PublicKey)
			d.Status = tapproof.DeviceActive
			d.EnrolledAt = time.Now().UTC().Truncate(time.Second)
			if err := d.Validate(); err != nil {
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
	f.StringVar(&kind, "kind", string(tapproof.ASV), "ASV, fluorescence, NIRS or lab")
	f.StringVar(&d.Firmware, "firmware", "", "SHA-256 of the device firmware, 64 hex digits")
	f.StringVar(&keyFile, "key", "", "private key file to create or reuse (required)")
	f.StringVar(&out, "out", "", "append the signed enrollment to this file instead of printing it")
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
			envs, err := readEnvelopes(args[0])
			if err != nil {
				return err
			}
			for _, env := range envs {
				if err := simulate.PostEnrollment(cmd.Context(), server, token, env); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled %d device(s)\n", len(envs))
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", env("SERVER", "http://127.0.0.1:8480"), "tapproof HTTP API ($TAPPROOF_SERVER)")
	return cmd
}

// readEnvelopes reads a file of JSON envelopes: a JSON array, or one
// envelope per line.
func readEnvelopes(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("enrollments: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(b, &arr); err != nil {
			return nil, fmt.Errorf("enrollments %s: %w", path, err)
		}
		out := make([][]byte, len(arr))
		for i, r := range arr {
			out[i] = r
		}
		return out, nil
	}
	var out [][]byte
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var r json.RawMessage
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("enrollments %s: %w", path, err)
		}
		out = append(out, r)
	}
}
