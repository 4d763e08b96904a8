package broker

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
)

// Account names in the broker configuration.
const (
	// ServiceAccount holds tapproof's streams, buckets and services.
	ServiceAccount = "TAPPROOF"
	// DevicesAccount holds every enrolled sensor's connection.
	DevicesAccount = "DEVICES"
	// LabsAccount holds certified labs' and state reviewers' connections.
	LabsAccount = "LABS"
	// SystemAccount is the NATS system account, used to disconnect a
	// revoked device.
	SystemAccount = "SYS"
)

// Key file names inside a broker directory. Each holds an nkey seed, mode
// 0600; the public keys go into the server configuration.
const (
	IssuerKeyFile   = "issuer.nk"    // account key signing the callout's answers
	XKeyFile        = "xkey.nk"      // curve key the callout's requests and answers are encrypted with
	ServiceKeyFile  = "service.nk"   // tapproof serve's user
	CalloutKeyFile  = "callout.nk"   // tapproof serve's user answering the auth callout
	SystemKeyFile   = "system.nk"    // tapproof serve's system-account user
	OperatorKeyFile = "operator.nk"  // the operator's user, for the nats CLI: reads only
	RouteSecretFile = "route.secret" // what a cluster's members authenticate their routes with
)

// Keys are the broker's own identities: every one of them is known to the
// server configuration; devices and labs are not, and go through the
// callout.
type Keys struct {
	Issuer nkeys.KeyPair // an account key: signs the callout's user JWTs
	// XKey is a curve key: the server encrypts each authorization request
	// to it, and the Authorizer encrypts its answers with it, so that
	// nobody else can read a request or answer one.
	XKey     nkeys.KeyPair
	Service  nkeys.KeyPair // a user in ServiceAccount: tapproof serve's streams, buckets and intake
	Callout  nkeys.KeyPair // a user in ServiceAccount: answers the auth callout, nothing else
	System   nkeys.KeyPair // a user in SystemAccount: tapproof serve's kicks
	Operator nkeys.KeyPair // a user in ServiceAccount: the operator's nats CLI, reading only
}

// keyFiles lists each key of k with its file and how to create it.
func (k *Keys) keyFiles() []keyFile {
	return []keyFile{
		{&k.Issuer, IssuerKeyFile, nkeys.CreateAccount},
		{&k.XKey, XKeyFile, nkeys.CreateCurveKeys},
		{&k.Service, ServiceKeyFile, nkeys.CreateUser},
		{&k.Callout, CalloutKeyFile, nkeys.CreateUser},
		{&k.System, SystemKeyFile, nkeys.CreateUser},
		{&k.Operator, OperatorKeyFile, nkeys.CreateUser},
	}
}

type keyFile struct {
	kp     *nkeys.KeyPair
	name   string
	create func() (nkeys.KeyPair, error)
}

// LoadOrCreateKeys reads the broker keys from dir, creating any that do not
// exist yet.
func LoadOrCreateKeys(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("broker keys: %w", err)
	}
	var k Keys
	for _, f := range k.keyFiles() {
		kp, err := loadOrCreateSeed(filepath.Join(dir, f.name), f.create)
		if err != nil {
			return nil, err
		}
		*f.kp = kp
	}
	return &k, nil
}

// LoadKey reads one nkey seed file.
func LoadKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nkey: %w", err)
	}
	// A seed file as loadOrCreateSeed writes it: one seed, of any kind
	// (ParseDecoratedNKey knows only operator, account and user seeds, not
	// the curve seed of the callout's xkey); else a decorated creds file.
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		kp, err = nkeys.ParseDecoratedNKey(b)
	}
	if err != nil {
		return nil, fmt.Errorf("nkey %s: %w", path, err)
	}
	return kp, nil
}

func loadOrCreateSeed(path string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	kp, err := LoadKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return kp, err
	}
	if kp, err = create(); err != nil {
		return nil, fmt.Errorf("nkey %s: %w", path, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, fmt.Errorf("nkey %s: %w", path, err)
	}
	if err := writeFile(path, append(seed, '\n'), 0o600); err != nil {
		return nil, err
	}
	return kp, nil
}

// routeUser is the user a cluster's members authenticate their routes as.
const routeUser = "route"

// LoadOrCreateRouteSecret returns the route secret kept in dir, creating
// it (256 random bits, hex, mode 0600) if there is none. Every member of a
// cluster is given the same one; nobody else needs it.
func LoadOrCreateRouteSecret(dir string) (string, error) {
	path := filepath.Join(dir, RouteSecretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) != 64 {
			return "", fmt.Errorf("route secret %s: not 64 hex digits", path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("route secret: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("route secret: %w", err)
	}
	s := hex.EncodeToString(random(32))
	if err := writeFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", err
	}
	return s, nil
}

func random(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return b
}

// writeFile writes a file atomically: a crash leaves the old file or the
// new one, never half of one.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func publicKey(kp nkeys.KeyPair) string {
	pub, err := kp.PublicKey()
	if err != nil {
		panic(err) // a key pair always has a public key
	}
	return pub
}

// LoadKeys reads the broker keys from dir and fails if any is missing: an
// external server knows only the keys its configuration was rendered
// with, so new ones would be refused. A directory written by an older
// 'tapproof broker init' lacks callout.nk and xkey.nk: running it again
// adds them and rewrites the server's configuration.
func LoadKeys(dir string) (*Keys, error) {
	var k Keys
	for _, f := range k.keyFiles() {
		kp, err := LoadKey(filepath.Join(dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("broker keys in %s (create them with 'tapproof broker init'): %w", dir, err)
		}
		*f.kp = kp
	}
	return &k, nil
}

// UserSeed returns the NATS nkey seed ("SU…") of an Ed25519 key: the same
// key, in the form NATS clients load from a file (nats --nkey FILE).
func UserSeed(key ed25519.PrivateKey) ([]byte, error) {
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, key.Seed())
	if err != nil {
		return nil, err
	}
	return kp.Seed()
}
