package platform

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tapproof/tapproof"
	"github.com/tapproof/tapproof/broker"
	"github.com/tapproof/tapproof/compliance"
	"github.com/tapproof/tapproof/journal"
)

// partyDirectory is the broker's Directory: enrolled devices from the
// registry, labs and reviewers from the compliance keys.
type partyDirectory struct {
	registry *journal.Registry
	keys     compliance.KeySet
}

func (d partyDirectory) Party(pub ed25519.PublicKey) (broker.Party, error) {
	if dev, ok := d.registry.DeviceByKey(pub); ok {
		if dev.Status != tapproof.DeviceActive {
			return broker.Party{}, broker.ErrRevoked
		}
		return broker.Party{Kind: broker.Device, ID: dev.ID, Utility: dev.Utility, Site: dev.Site}, nil
	}
	for _, set := range []struct {
		kind broker.PartyKind
		keys map[string][]ed25519.PublicKey
	}{{broker.Lab, d.keys.Labs}, {broker.Reviewer, d.keys.Reviewers}} {
		for id, ks := range set.keys {
			for _, k := range ks {
				if k.Equal(pub) {
					return broker.Party{Kind: set.kind, ID: id}, nil
				}
			}
		}
	}
	return broker.Party{}, broker.ErrUnknownKey
}

// Revoke records device's revocation in its utility's log, disables it in
// the registry (ingest refuses its readings and the broker its
// connections from then on) and closes the connections it has. Revoking a
// revoked device again changes nothing.
func (p *app) Revoke(ctx context.Context, id, reason string) (tapproof.Device, error) {
	p.enrollMu.Lock()
	defer p.enrollMu.Unlock()
	d, ok := p.registry.Device(id)
	if !ok {
		return d, fmt.Errorf("device %q: %w", id, tapproof.ErrNotFound)
	}
	if d.Status == tapproof.DeviceActive {
		rec := tapproof.Revocation{Type: tapproof.RevocationRecordType, Device: d.ID, Utility: d.Utility, Site: d.Site,
			Reason: strings.TrimSpace(reason), RevokedAt: time.Now().UTC().Truncate(time.Second)}
		if err := rec.Validate(); err != nil {
			return d, err
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return d, err
		}
		if _, err := p.journal.AppendRevocation(ctx, d.Utility, d.ID, b); err != nil {
			return d, err
		}
		d.Status = tapproof.DeviceDisabled
		if err := p.registry.Put(ctx, d); err != nil {
			return d, err
		}
	}
	if p.sys != nil {
		n, err := broker.Disconnect(ctx, p.sys, broker.Party{Kind: broker.Device, ID: d.ID})
		if err != nil {
			p.log.Warn("revoke: disconnect", slog.String("device", d.ID), slog.Any("error", err))
		} else {
			p.log.Info("revoke: connections closed", slog.String("device", d.ID), slog.Int("connections", n))
		}
	}
	return d, nil
}

// natsConnect connects to the broker as one of tapproof's own nkey users,
// over TLS verified with caFile, or as extra says (nats.InProcessServer).
func natsConnect(url string, kp interface {
	PublicKey() (string, error)
	Sign([]byte) ([]byte, error)
}, caFile, name string, extra ...nats.Option) (*nats.Conn, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.Nkey(pub, kp.Sign)}
	if caFile != "" {
		opts = append(opts, nats.RootCAs(caFile))
	}
	opts = append(opts, extra...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", name, err)
	}
	return nc, nil
}
