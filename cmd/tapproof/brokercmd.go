package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tapproof/tapproof/broker"
)

func newBrokerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "broker", Short: "Set up an external NATS server as tapproof's broker"}
	cmd.AddCommand(newBrokerInitCmd())
	return cmd
}

func newBrokerInitCmd() *cobra.Command {
	var (
		dir, listen, storeDir, name string
		hosts                       []string
		files                       broker.TLSFiles
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the broker's keys, certificates and nats-server configuration",
		Long: `Write what an external NATS server needs to be tapproof's broker, into --dir:
the nkeys of tapproof's own users (service.nk, system.nk, operator.nk) and of
the auth callout's issuer (issuer.nk), a local CA and server certificate
for --host unless --cert and --key name your own, and nats.conf.

Start the server with 'nats-server -c DIR/nats.conf', and tapproof with
'tapproof serve --nats-url tls://HOST:PORT --broker-dir DIR'. Keys that exist
are kept, so running it again only rewrites nats.conf. Keep the directory
private: it holds the keys that open the broker.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := broker.LoadOrCreateKeys(dir)
			if err != nil {
				return err
			}
			if files.Cert == "" {
				if files, err = broker.EnsureLocalCA(dir, hosts...); err != nil {
					return err
				}
			}
			if storeDir == "" {
				storeDir = filepath.Join(dir, "jetstream")
			}
			conf := broker.ServerConfig{Keys: keys, TLS: files, Listen: listen, StoreDir: storeDir, ServerName: name}.Render()
			path := filepath.Join(dir, "nats.conf")
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				return fmt.Errorf("broker config: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nstart: nats-server -c %s\nthen:  tapproof serve --nats-url tls://%s --broker-dir %s\n", path, path, listen, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "tapproof-broker", "directory for the keys, certificates and nats.conf")
	f.StringVar(&listen, "listen", "0.0.0.0:4222", "client address of the NATS server")
	f.StringVar(&storeDir, "store-dir", "", "JetStream directory (default DIR/jetstream)")
	f.StringVar(&name, "server-name", "tapproof-broker", "NATS server name")
	f.StringArrayVar(&hosts, "host", nil, "a DNS name or IP address devices reach the broker at, for the local CA's certificate (repeatable)")
	f.StringVar(&files.Cert, "cert", "", "your own server certificate chain (PEM) instead of a local CA's")
	f.StringVar(&files.Key, "key", "", "its key (PEM)")
	f.StringVar(&files.CA, "ca", "", "the CA that signed --cert, given to devices")
	return cmd
}
