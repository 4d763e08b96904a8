package broker_test

import (
	"testing"

	"github.com/tapproof/tapproof/broker"
)

// TestKeysReadBack: the keys LoadOrCreateKeys writes are read back by
// LoadKeys (what serve does with an external server's directory) and by
// LoadOrCreateKeys again, every one of them, the callout's curve key
// included.
func TestKeysReadBack(t *testing.T) {
	dir := t.TempDir()
	made, err := broker.LoadOrCreateKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func(string) (*broker.Keys, error){"LoadKeys": broker.LoadKeys, "LoadOrCreateKeys": broker.LoadOrCreateKeys} {
		got, err := load(dir)
		if err != nil {
			t.Fatalf("%s of the keys LoadOrCreateKeys wrote: %v", name, err)
		}
		for _, pair := range []struct {
			what      string
			want, got interface{ PublicKey() (string, error) }
		}{
			{"issuer", made.Issuer, got.Issuer}, {"xkey", made.XKey, got.XKey}, {"service", made.Service, got.Service},
			{"callout", made.Callout, got.Callout}, {"system", made.System, got.System}, {"operator", made.Operator, got.Operator},
		} {
			w, _ := pair.want.PublicKey()
			g, err := pair.got.PublicKey()
			if err != nil || g != w {
				t.Errorf("%s: %s key read back as %q, %v; want %q", name, pair.what, g, err, w)
			}
		}
	}
}
