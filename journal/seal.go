package journal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderSeal carries a journal entry's seal: an HMAC-SHA256, under a key
// only tapproof holds, of the entry's subject, its Tapproof-* headers and
// its bytes. The log appends only sealed entries: an entry anybody else
// put in the journal (an operator's mistake, stolen broker credentials) is
// set aside with tapproof.SetAsideUnsealed, and a tombstone takes its index.
const HeaderSeal = "Tapproof-Seal"

// SealKeySize is the size of a seal key.
const SealKeySize = 32

// Option configures a Journal.
type Option func(*Journal)

// WithSealKey makes the journal seal every entry it appends with key, and
// set aside, in cursors and device heads, every entry whose seal does not
// verify. Without it nothing is sealed or checked (tests of the journal
// alone); tapproof serve always sets it.
func WithSealKey(key []byte) Option {
	return func(j *Journal) { j.sealKey = slices.Clone(key) }
}

// LoadOrCreateSealKey reads the seal key kept in path, creating it (mode
// 0600) if it does not exist. Every replica of a tapproof must use the same
// key.
func LoadOrCreateSealKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != SealKeySize {
			return nil, fmt.Errorf("seal key %s: not %d bytes of base64", path, SealKeySize)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	k := make([]byte, SealKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if _, err := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return k, f.Close()
}

// seal puts m's seal in its headers.
func (j *Journal) seal(m *nats.Msg) *nats.Msg {
	if j.sealKey == nil {
		return m
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Del(HeaderSeal)
	m.Header.Set(HeaderSeal, base64.StdEncoding.EncodeToString(sealMAC(j.sealKey, m.Subject, m.Header, m.Data)))
	return m
}

// metaSealedFrom is the log stream's metadata key holding the first
// stream sequence tapproof sealed: a journal written before sealing began
// keeps its earlier entries, which were checked by the ingest of their day.
// metaSealedFromMAC holds its HMAC under the seal key, so that nobody
// holding only broker credentials can raise the epoch and have unsealed
// entries taken for tapproof's.
const (
	metaSealedFrom    = "tapproof.sealed_from"
	metaSealedFromMAC = "tapproof.sealed_from_mac"
)

// sealEpoch returns the first sealed stream sequence of log stream s,
// recording it in the stream's metadata, with its HMAC, the first time a
// sealing journal opens it. An epoch whose HMAC is missing (recorded by a
// version that did not authenticate it) or does not verify is not taken at
// its word: no earlier than the first entry that carries a valid seal, since
// tapproof sealed every entry from its epoch on. It is then recorded again,
// authenticated.
func (j *Journal) sealEpoch(ctx context.Context, s jetstream.Stream) (uint64, error) {
	if j.sealKey == nil {
		return 0, nil
	}
	info := s.CachedInfo()
	v, ok := info.Config.Metadata[metaSealedFrom]
	if !ok {
		return j.recordEpoch(ctx, info.Config, info.State.LastSeq+1)
	}
	from, err := strconv.ParseUint(v, 10, 64)
	if err == nil && from > 0 && j.epochAuthentic(info.Config.Name, v, info.Config.Metadata[metaSealedFromMAC]) {
		return from, nil
	}
	if err != nil || from == 0 {
		from = 1 // unreadable: every entry must be sealed
	}
	first, err := j.firstSealed(ctx, s, from)
	if err != nil {
		return 0, fmt.Errorf("seal epoch: %w", err)
	}
	return j.recordEpoch(ctx, info.Config, first)
}

// recordEpoch records from, authenticated, as the seal epoch in stream
// configuration cfg.
func (j *Journal) recordEpoch(ctx context.Context, cfg jetstream.StreamConfig, from uint64) (uint64, error) {
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	v := strconv.FormatUint(from, 10)
	cfg.Metadata[metaSealedFrom] = v
	cfg.Metadata[metaSealedFromMAC] = j.epochMAC(cfg.Name, v)
	if _, err := j.js.UpdateStream(ctx, cfg); err != nil {
		return 0, fmt.Errorf("record seal epoch: %w", err)
	}
	return from, nil
}

// epochMAC is the base64 HMAC of stream's seal epoch v.
func (j *Journal) epochMAC(stream, v string) string {
	mac := hmac.New(sha256.New, j.sealKey)
	field(mac, []byte(metaSealedFrom))
	field(mac, []byte(stream))
	field(mac, []byte(v))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (j *Journal) epochAuthentic(stream, v, got string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(j.epochMAC(stream, v)))
}

// firstSealed returns the sequence of the first entry of s before claim
// whose seal verifies, or claim if there is none.
func (j *Journal) firstSealed(ctx context.Context, s jetstream.Stream, claim uint64) (uint64, error) {
	info := s.CachedInfo()
	for seq := max(info.State.FirstSeq, 1); seq < claim && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if j.validSeal(m.Subject, m.Header, m.Data) {
			return seq, nil
		}
	}
	return claim, nil
}

// sealed reports whether a journal message carries a valid seal, or
// predates sealing; always true when sealing is off.
func (j *Journal) sealed(subject string, streamSeq uint64, hdr nats.Header, data []byte) bool {
	if j.sealKey == nil {
		return true
	}
	if tok := strings.SplitN(subject, ".", 4); len(tok) > 2 {
		j.mu.Lock()
		from, ok := j.sealedFrom[tok[2]]
		j.mu.Unlock()
		if ok && streamSeq < from {
			return true
		}
	}
	return j.validSeal(subject, hdr, data)
}

// validSeal reports whether a journal message carries a valid seal.
func (j *Journal) validSeal(subject string, hdr nats.Header, data []byte) bool {
	got, err := base64.StdEncoding.DecodeString(hdr.Get(HeaderSeal))
	if err != nil || len(got) == 0 {
		return false
	}
	return hmac.Equal(got, sealMAC(j.sealKey, subject, hdr, data))
}

// sealMAC is the HMAC of the subject, the Tapproof-* headers but the seal,
// in name order, and the data, each length-prefixed.
func sealMAC(key []byte, subject string, hdr nats.Header, data []byte) []byte {
	mac := hmac.New(sha256.New, key)
	field(mac, []byte(subject))
	var names []string
	for k := range hdr {
		if strings.HasPrefix(k, "Tapproof-") && k != HeaderSeal {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		field(mac, []byte(k))
		for _, v := range hdr.Values(k) {
			field(mac, []byte(v))
		}
	}
	field(mac, data)
	return mac.Sum(nil)
}

func field(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
