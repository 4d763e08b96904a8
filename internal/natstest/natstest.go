// Package natstest starts an embedded NATS server with JetStream for tests.
// It is imported only by tests.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapproof/tapproof/journal"
)

// Server starts an embedded NATS server with a JetStream file store in a
// temporary directory, on a random port, and shuts it down at cleanup.
func Server(tb testing.TB) *server.Server {
	tb.Helper()
	s, err := journal.StartServer(journal.ServerConfig{Dir: tb.TempDir(), Port: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s and returns the connection and a JetStream context,
// closed at cleanup.
func Connect(tb testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}
