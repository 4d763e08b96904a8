package journal

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultPort is the embedded NATS server's default client port.
const DefaultPort = 4222

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Dir is the data directory; JetStream's file store goes in Dir/jetstream.
	Dir string
	// Host to listen on; default 127.0.0.1.
	Host string
	// Port to listen on; DefaultPort if zero, a random free port if -1.
	Port int
	// SyncAlways makes JetStream fsync every write, so an acknowledged
	// reading survives a power loss, not only a process crash.
	SyncAlways bool
	// Config is a nats-server configuration (accounts, authorization, TLS)
	// applied before the fields above; broker.ServerConfig renders
	// tapproof's. Empty runs an open server, for tests only.
	Config string
}

// StartServer starts an embedded NATS server with JetStream and waits until
// it accepts connections.
func StartServer(cfg ServerConfig) (*server.Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	opts := &server.Options{}
	if cfg.Config != "" {
		if err := opts.ProcessConfigString(cfg.Config); err != nil {
			return nil, fmt.Errorf("nats server config: %w", err)
		}
	}
	opts.ServerName = "tapproof"
	opts.Host = cfg.Host
	opts.Port = cfg.Port
	opts.JetStream = true
	opts.StoreDir = filepath.Join(cfg.Dir, "jetstream")
	opts.SyncAlways = cfg.SyncAlways
	opts.NoSigs = true
	opts.NoLog = true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server: not ready after 30s")
	}
	return s, nil
}
