package localstack

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// TestClaimPortsRepicks: a port Start picked that something else took
// before the component started is picked again (TestReplicasHandOver once
// failed on "port ... is in use" for the signer); a port the caller chose
// is never changed.
func TestClaimPortsRepicks(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	s := &Stack{cfg: Config{Log: io.Discard, SignerRPCPort: taken, SignerHTTPPort: taken + 1}, repickable: map[Component]bool{LogSigner: true}}
	if err := s.claimPorts(LogSigner); err != nil {
		t.Fatalf("claimPorts = %v, want new ports", err)
	}
	if s.cfg.SignerRPCPort == taken || s.cfg.SignerRPCPort == 0 {
		t.Fatalf("signer port = %d, want a free one other than %d", s.cfg.SignerRPCPort, taken)
	}

	s = &Stack{cfg: Config{Log: io.Discard, InfluxPort: taken, InfluxRPCPort: taken + 1}, repickable: map[Component]bool{}}
	if err := s.claimPorts(InfluxDB); err == nil {
		t.Fatal("claimPorts changed or accepted a port the caller chose and something holds")
	}
	if s.cfg.InfluxPort != taken {
		t.Fatalf("influx port = %d, want the caller's %d kept", s.cfg.InfluxPort, taken)
	}
	s = &Stack{cfg: Config{Log: io.Discard, InfluxPort: taken}, repickable: map[Component]bool{InfluxDB: true}}
	if err := s.claimPorts(InfluxDB); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", s.cfg.InfluxPort); s.InfluxURL != want {
		t.Fatalf("InfluxURL = %q, want %q after the repick", s.InfluxURL, want)
	}
}
