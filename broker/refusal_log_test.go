package broker_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/tapproof/tapproof/broker"
)

// oneDevice is a Directory that knows one device's key.
type oneDevice struct{ pub ed25519.PublicKey }

func (d oneDevice) Party(k ed25519.PublicKey) (broker.Party, error) {
	if k.Equal(d.pub) {
		return broker.Party{Kind: broker.Device, ID: "dev-1"}, nil
	}
	return broker.Party{}, errors.New("unknown key")
}

// TestStrangersRefusedQuietly: a login with a garbage signature is logged
// at info level only when its key is enrolled; a stranger's, whose key is
// anybody's, only at debug, so that a flood of them cannot flood the log.
func TestStrangersRefusedQuietly(t *testing.T) {
	issuer, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	devPub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	strangerPub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a := broker.NewAuthorizer(broker.AuthorizerConfig{Issuer: issuer}, oneDevice{devPub}, nil, slog.New(slog.NewTextHandler(&logs, nil)))
	refuse := func(pub ed25519.PublicKey) string {
		t.Helper()
		logs.Reset()
		nkey, err := broker.UserKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		req := &jwt.AuthorizationRequestClaims{}
		req.UserNkey = nkey
		req.ConnectOptions.Nkey = nkey
		req.ConnectOptions.SignedNonce = "Z2FyYmFnZQ" // "garbage"
		req.ClientInformation.Nonce = "nonce"
		if _, err := a.Decide(req); err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}
	if got := refuse(devPub); !strings.Contains(got, "level=INFO") || !strings.Contains(got, "reason=bad_signature") {
		t.Errorf("an enrolled key's bad signature logged %q, want it at info", got)
	}
	if got := refuse(strangerPub); got != "" {
		t.Errorf("a stranger's bad signature logged %q at info level, want nothing above debug", got)
	}
}
