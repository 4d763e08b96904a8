package loadgen

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/simulate"
)

// Broker says how loadgen reaches tapproof's broker: the sensors with
// their own keys, as in the field, and the observer and reconciliation as
// the operator, whose key and the broker's CA are in Dir.
type Broker struct {
	URL string
	Dir string // the broker directory: ca.pem, operator.nk and service.nk
	// Keys are the sensors' keys, by device id.
	Keys map[string]ed25519.PrivateKey
}

// NewBroker returns the Broker at url, with the keys of fleet's sensors.
func NewBroker(url, dir string, fleet *simulate.Fleet) Broker {
	b := Broker{URL: url, Dir: dir, Keys: map[string]ed25519.PrivateKey{}}
	for _, s := range fleet.Sensors {
		b.Keys[s.Device.ID] = s.Key
	}
	return b
}

func (b Broker) ca() string { return filepath.Join(b.Dir, broker.CAFile) }

// Operator connects as the operator, who reads only.
func (b Broker) Operator(opts ...nats.Option) (*nats.Conn, error) {
	return b.user(broker.OperatorKeyFile, "loadgen-operator", opts...)
}

// Service connects as tapproof serve's service user, who may write
// tapproof's streams and buckets.
func (b Broker) Service(opts ...nats.Option) (*nats.Conn, error) {
	return b.user(broker.ServiceKeyFile, "loadgen-service", opts...)
}

func (b Broker) user(keyFile, name string, opts ...nats.Option) (*nats.Conn, error) {
	kp, err := broker.LoadKey(filepath.Join(b.Dir, keyFile))
	if err != nil {
		return nil, err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	opts = append([]nats.Option{nats.Nkey(pub, kp.Sign), nats.RootCAs(b.ca()), nats.Name(name)}, opts...)
	return nats.Connect(b.URL, opts...)
}

// Device connects as sensor id.
func (b Broker) Device(id string, opts ...nats.Option) (*nats.Conn, error) {
	key, ok := b.Keys[id]
	if !ok {
		return nil, fmt.Errorf("loadgen: no key for device %s", id)
	}
	// Through the fault tests, connections fail and come back by design;
	// the publisher counts what it retries, so keep nats.go from printing
	// each failure.
	quiet := nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
	return broker.DialParty(b.URL, b.ca(), broker.Device, id, key, append([]nats.Option{quiet}, opts...)...)
}
