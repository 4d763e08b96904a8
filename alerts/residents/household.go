package residents

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapproof/tapproof"
)

// HouseholdKeySize is the size of the key household codes are derived
// with.
const HouseholdKeySize = 32

// householdDigits is how many base32 digits a household code has: 80
// bits of an HMAC-SHA256, written as four groups of four.
const householdDigits = 16

// crockford is Crockford's base32 alphabet: digits and upper-case letters
// without I, L, O and U, so that a code read aloud or copied by hand
// survives.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// HouseholdCodes derives and checks household codes: the code the utility
// (or the lab) gives the household whose tap a compliance sample was
// drawn from, with which it subscribes to that sample's result. A code is
// the first 80 bits of HMAC-SHA256, under a key only tapproof holds, of
// the utility, the lab and the sample id, written in Crockford base32 as
// XXXX-XXXX-XXXX-XXXX. It binds that sample and no other, needs no
// storage, and can be issued before the lab reports. It logs and formats
// without its key.
type HouseholdCodes struct {
	key []byte
}

// NewHouseholdCodes returns HouseholdCodes under key, of HouseholdKeySize
// bytes.
func NewHouseholdCodes(key []byte) (*HouseholdCodes, error) {
	if len(key) != HouseholdKeySize {
		return nil, fmt.Errorf("household code key: %d bytes, want %d", len(key), HouseholdKeySize)
	}
	return &HouseholdCodes{key: append([]byte(nil), key...)}, nil
}

// Code returns the household code of sample sampleID of lab, taken for
// utility. Its error, for an id that is not one, is a *tapproof.Rejection.
func (h *HouseholdCodes) Code(utility, lab, sampleID string) (string, error) {
	if err := checkSampleIDs(utility, lab, sampleID); err != nil {
		return "", err
	}
	d := h.digits(utility, lab, sampleID)
	return d[0:4] + "-" + d[4:8] + "-" + d[8:12] + "-" + d[12:16], nil
}

// Check reports whether code is the household code of sample sampleID of
// lab for utility, comparing in constant time. Case, spaces and hyphens do
// not matter, and O, I and L read as 0, 1 and 1.
func (h *HouseholdCodes) Check(utility, lab, sampleID, code string) bool {
	if checkSampleIDs(utility, lab, sampleID) != nil {
		return false
	}
	want := h.digits(utility, lab, sampleID)
	return subtle.ConstantTimeCompare([]byte(normalizeCode(code)), []byte(want)) == 1
}

// String hides the key.
func (h *HouseholdCodes) String() string { return "household codes (key not shown)" }

// LogValue logs nothing of the key.
func (h *HouseholdCodes) LogValue() slog.Value { return slog.StringValue(h.String()) }

func (h *HouseholdCodes) digits(utility, lab, sampleID string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte("tapproof household code v1\x00" + utility + "\x00" + lab + "\x00" + sampleID))
	return crockford.EncodeToString(m.Sum(nil)[:householdDigits*5/8])
}

// normalizeCode returns code as its digits: upper case, without spaces or
// hyphens, O read as 0 and I and L as 1. Anything longer than a code is
// cut to one digit more, which never matches.
func normalizeCode(code string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(code) {
		if b.Len() > householdDigits {
			break
		}
		switch c {
		case ' ', '-', '\t':
			continue
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func checkSampleIDs(utility, lab, sampleID string) error {
	if !tapproof.ValidID(utility) || !tapproof.ValidSampleKey(tapproof.LabSampleKey(lab, sampleID)) {
		return tapproof.Reject(tapproof.ReasonInvalid, "utility, lab and sample must be ids (the lab's sample id as it signs it)")
	}
	return nil
}

// LoadOrCreateHouseholdKey reads the household code key kept in path
// (base64), creating it (mode 0600) if it does not exist, exclusively: of
// replicas sharing the directory, the key of the first to create it is
// used.
// Every replica of a tapproof must use the same key, or a code issued by
// one is refused by another.
func LoadOrCreateHouseholdKey(path string) ([]byte, error) {
	if k, err := readHouseholdKey(path); !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	k := make([]byte, HouseholdKeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("household code key: %w", err)
	}
	// Written whole to a file of its own, then linked into place, which
	// fails if the key exists: no replica ever reads half a key.
	f, err := os.CreateTemp(filepath.Dir(path), ".household-code.key.*")
	if err != nil {
		return nil, fmt.Errorf("household code key: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), path)
	}
	if errors.Is(err, os.ErrExist) {
		return readHouseholdKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("household code key: %w", err)
	}
	return k, nil
}

func readHouseholdKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("household code key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != HouseholdKeySize {
		return nil, fmt.Errorf("household code key %s: not %d bytes of base64", path, HouseholdKeySize)
	}
	return k, nil
}
