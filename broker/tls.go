package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLS file names inside a broker directory.
const (
	CAFile      = "ca.pem"         // the local CA devices verify the broker with
	caKeyFile   = "ca-key.pem"     // never leaves the broker directory
	CertFile    = "server.pem"     // the broker's certificate, signed by the CA
	CertKeyFile = "server-key.pem" // its key
	// RouteCertFile and RouteKeyFile are what a cluster's servers present
	// to each other on their routes (EnsureRouteCert).
	RouteCertFile = "route.pem"
	RouteKeyFile  = "route-key.pem"
	certLifetime  = 825 * 24 * time.Hour
	caLifetime    = 10 * 365 * 24 * time.Hour
)

// TLSFiles names the certificate files of the broker's listener.
type TLSFiles struct {
	CA   string // CA certificate clients verify the server with
	Cert string // server certificate chain
	Key  string // server key
}

// EnsureLocalCA makes sure dir holds a local CA and a server certificate for
// hosts (names or IP addresses; 127.0.0.1 and localhost are always added),
// creating what is missing. It is for the demo and for tests: production
// takes certificate files from its own CA.
func EnsureLocalCA(dir string, hosts ...string) (TLSFiles, error) {
	files := TLSFiles{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, CertFile), Key: filepath.Join(dir, CertKeyFile)}
	return files, ensureLeaf(dir, files, "tapproof NATS broker", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, hosts)
}

// EnsureRouteCert makes sure dir holds, beside the local CA (created if
// missing), the certificate a cluster's servers present to each other on
// their routes: for hosts, like the server certificate, and for client
// authentication too, since each server dials the others. Every server of
// a cluster is given the same one.
func EnsureRouteCert(dir string, hosts ...string) (TLSFiles, error) {
	files := TLSFiles{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, RouteCertFile), Key: filepath.Join(dir, RouteKeyFile)}
	return files, ensureLeaf(dir, files, "tapproof NATS cluster route",
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, hosts)
}

// ensureLeaf makes sure files.Cert and files.Key hold a certificate signed
// by the local CA in dir for hosts (with loopback always added), creating
// the CA and the certificate if missing.
func ensureLeaf(dir string, files TLSFiles, name string, usage []x509.ExtKeyUsage, hosts []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("local ca: %w", err)
	}
	ca, caKey, err := loadOrCreateCA(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(files.Cert); err == nil {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("%s key: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, h := range append([]string{"127.0.0.1", "::1", "localhost"}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("%s certificate: %w", name, err)
	}
	if err := writeKey(files.Key, key); err != nil {
		return err
	}
	return writeFile(files.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile)
	cb, err := os.ReadFile(certPath)
	if err == nil {
		kb, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("local ca key: %w", err)
		}
		cblk, _ := pem.Decode(cb)
		kblk, _ := pem.Decode(kb)
		if cblk == nil || kblk == nil {
			return nil, nil, errors.New("local ca: not PEM")
		}
		cert, err := x509.ParseCertificate(cblk.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("local ca: %w", err)
		}
		key, err := x509.ParseECPrivateKey(kblk.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("local ca key: %w", err)
		}
		return cert, key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("local ca: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("local ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "tapproof local CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("local ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("local ca: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writeFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("key %s: %w", path, err)
	}
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}
