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
		serverMount                 string
		hosts                       []string
		files                       broker.TLSFiles
		clusterName, clusterListen  string
		routes                      []string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the broker's keys, certificates and nats-server configuration",
		Long: `Write what an external NATS server needs to be tapproof's broker, into --dir:
the nkeys of tapproof's own users (service.nk, callout.nk, system.nk, and
operator.nk, which reads only) and of the auth callout's issuer (issuer.nk)
and encryption key (xkey.nk), a local CA (ca.pem) and server
certificate for --host unless --cert and --key name your own, and, in
DIR/server, what the NATS server itself reads: nats.conf and its certificate
and key. The server never sees a seed: nats.conf names public keys only.

Start the server with 'nats-server -c DIR/server/nats.conf' (give
--server-mount if it sees DIR/server under another path, as in a container),
and tapproof with 'tapproof serve --nats-url tls://HOST:PORT --broker-dir DIR'.
Give devices ca.pem. Keys that exist are kept, so running it again only
rewrites the server's files. Keep DIR private: its seeds open the broker.

For a cluster, run it once per server with the same --dir (copy it to each
server), that server's --server-name, --listen and --cluster-listen, and
every server's route address in --route: the servers then route to each
other over mutual TLS (route.pem, from the local CA, for every --host) and
authenticate with the secret in route.secret. Start
tapproof with every server's URL in --nats-url, comma-separated.`,
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
			serverDir := filepath.Join(dir, "server")
			if err := os.MkdirAll(serverDir, 0o700); err != nil {
				return fmt.Errorf("broker config: %w", err)
			}
			if serverMount == "" {
				if serverMount, err = filepath.Abs(serverDir); err != nil {
					return err
				}
			}
			for src, dst := range map[string]string{files.Cert: broker.CertFile, files.Key: broker.CertKeyFile} {
				b, err := os.ReadFile(src)
				if err != nil {
					return fmt.Errorf("broker config: %w", err)
				}
				if err := os.WriteFile(filepath.Join(serverDir, dst), b, 0o600); err != nil {
					return fmt.Errorf("broker config: %w", err)
				}
			}
			if storeDir == "" {
				storeDir = filepath.Join(serverMount, "jetstream")
			}
			sc := broker.ServerConfig{Keys: keys, Listen: listen, StoreDir: storeDir, ServerName: name,
				TLS: broker.TLSFiles{Cert: filepath.Join(serverMount, broker.CertFile), Key: filepath.Join(serverMount, broker.CertKeyFile)}}
			if clusterListen != "" || len(routes) > 0 {
				if clusterListen == "" || len(routes) == 0 {
					return fmt.Errorf("a cluster needs both --cluster-listen and --route")
				}
				secret, err := broker.LoadOrCreateRouteSecret(dir)
				if err != nil {
					return err
				}
				route, err := broker.EnsureRouteCert(dir, hosts...)
				if err != nil {
					return err
				}
				for src, dst := range map[string]string{route.Cert: broker.RouteCertFile, route.Key: broker.RouteKeyFile, route.CA: broker.CAFile} {
					b, err := os.ReadFile(src)
					if err != nil {
						return fmt.Errorf("broker config: %w", err)
					}
					if err := os.WriteFile(filepath.Join(serverDir, dst), b, 0o600); err != nil {
						return fmt.Errorf("broker config: %w", err)
					}
				}
				sc.Cluster = &broker.Cluster{Name: clusterName, Listen: clusterListen, Routes: routes, Secret: secret,
					TLS: broker.TLSFiles{Cert: filepath.Join(serverMount, broker.RouteCertFile), Key: filepath.Join(serverMount, broker.RouteKeyFile),
						CA: filepath.Join(serverMount, broker.CAFile)}}
			}
			conf := sc.Render()
			path := filepath.Join(serverDir, "nats.conf")
			if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
				return fmt.Errorf("broker config: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nstart: nats-server -c %s\nthen:  tapproof serve --nats-url tls://%s --broker-dir %s\n",
				path, filepath.Join(serverMount, "nats.conf"), listen, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "tapproof-broker", "directory for the keys, certificates and nats.conf")
	f.StringVar(&listen, "listen", "0.0.0.0:4222", "client address of the NATS server")
	f.StringVar(&storeDir, "store-dir", "", "JetStream directory as the server sees it (default <server-mount>/jetstream)")
	f.StringVar(&serverMount, "server-mount", "", "where the NATS server sees DIR/server, e.g. /etc/nats in a container (default DIR/server)")
	f.StringVar(&name, "server-name", "tapproof-broker", "NATS server name")
	f.StringArrayVar(&hosts, "host", nil, "a DNS name or IP address devices reach the broker at, for the local CA's certificate (repeatable)")
	f.StringVar(&files.Cert, "cert", "", "your own server certificate chain (PEM) instead of a local CA's")
	f.StringVar(&files.Key, "key", "", "its key (PEM)")
	f.StringVar(&files.CA, "ca", "", "the CA that signed --cert, given to devices")
	f.StringVar(&clusterName, "cluster-name", "tapproof", "the NATS cluster's name, the same on every server")
	f.StringVar(&clusterListen, "cluster-listen", "", "this server's route address, host:port, for a cluster")
	f.StringArrayVar(&routes, "route", nil, "a cluster server's route address, host:port (repeatable; every server's, this one's included)")
	return cmd
}
