package localstack

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// trillianStopSignal stops the Trillian binaries. They keep no state outside
// PostgreSQL, whose transactions make a kill safe, and on SIGTERM they sleep
// 5 s (server) or 10 s (signer) "to tidy up", which would slow every test.
const trillianStopSignal = syscall.SIGKILL

// trillianArgs are the flags the log server and signer share.
func (s *Stack) trillianArgs(rpcPort, httpPort int) []string {
	return []string{
		"--storage_system=postgresql",
		"--postgresql_uri=" + s.PostgresURI,
		// The postgresql quota system slows writes to tens per second
		// once leaves queue up; tests and the demo need none.
		"--quota_system=noop",
		fmt.Sprintf("--rpc_endpoint=127.0.0.1:%d", rpcPort),
		fmt.Sprintf("--http_endpoint=127.0.0.1:%d", httpPort),
	}
}

// startLogServer runs trillian_log_server and waits until its gRPC port
// accepts connections and /healthz (which pings storage) answers.
func (s *Stack) startLogServer(ctx context.Context) (*process, error) {
	p, err := s.launch(LogServer, procSpec{
		path:    s.bins.logServer,
		args:    s.trillianArgs(s.cfg.TrillianRPCPort, s.cfg.TrillianHTTPPort),
		stopSig: trillianStopSignal,
	})
	if err != nil {
		return nil, err
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.cfg.TrillianHTTPPort)
	err = s.await(ctx, LogServer, p, time.Minute, func(ctx context.Context) error {
		if err := dialReady(ctx, s.TrillianAddr); err != nil {
			return err
		}
		return httpReady(ctx, health)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// startLogSigner runs trillian_log_signer as the only sequencer (no etcd)
// and waits until its /healthz answers.
func (s *Stack) startLogSigner(ctx context.Context) (*process, error) {
	p, err := s.launch(LogSigner, procSpec{
		path: s.bins.logSigner,
		args: append(s.trillianArgs(s.cfg.SignerRPCPort, s.cfg.SignerHTTPPort),
			"--force_master",
			"--sequencer_interval=100ms",
			"--batch_size=1000",
		),
		stopSig: trillianStopSignal,
	})
	if err != nil {
		return nil, err
	}
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", s.cfg.SignerHTTPPort)
	err = s.await(ctx, LogSigner, p, time.Minute, func(ctx context.Context) error {
		return httpReady(ctx, health)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
