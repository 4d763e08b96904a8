package ingest

import "testing"

func TestDecided(t *testing.T) {
	var d decided
	if _, ok := d.get("u1", "d1"); ok {
		t.Fatal("a new decided knows d1")
	}
	d.raise("u1", "d1", 7)
	d.raise("u1", "d1", 5) // an older head, looked up late
	d.raise("u2", "d1", 1) // the same device id in another utility
	if seq, ok := d.get("u1", "d1"); !ok || seq != 7 {
		t.Errorf("get(u1, d1) = %d, %t; want 7: raise never lowers", seq, ok)
	}
	if seq, _ := d.get("u2", "d1"); seq != 1 {
		t.Errorf("get(u2, d1) = %d, want 1", seq)
	}
	d.reset()
	if _, ok := d.get("u1", "d1"); ok {
		t.Error("reset kept d1: a lane that leads again must ask the journal")
	}
	d.raise("u1", "d1", 0)
	if seq, ok := d.get("u1", "d1"); !ok || seq != 0 {
		t.Errorf("get after raising to 0 = %d, %t; want a known 0 (the device has no reading yet)", seq, ok)
	}
}
