package residents_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/tapproof/tapproof/alerts/residents"
)

// TestSpecialPurposeRefused: a resident's webhook never reaches an address
// of the IANA special-purpose registries, checked on the literal address at
// subscribe time and on the resolved address at dial time.
func TestSpecialPurposeRefused(t *testing.T) {
	tests := []struct {
		addr   string
		public bool
	}{
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"10.0.0.1", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"127.0.0.1", false},
		{"127.255.255.255", false},
		{"169.254.169.254", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"192.0.0.1", false},
		{"192.0.0.9", false},
		{"192.0.2.1", false},
		{"192.31.196.1", false},
		{"192.52.193.1", false},
		{"192.88.99.1", false},
		{"192.168.1.1", false},
		{"192.175.48.1", false},
		{"198.18.0.1", false},
		{"198.19.255.255", false},
		{"198.51.100.7", false},
		{"203.0.113.9", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"::", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.1.2.3", false},
		{"::ffff:100.64.0.1", false},
		{"::127.0.0.1", false}, // IPv4-compatible, deprecated
		{"64:ff9b::a00:1", false},
		{"64:ff9b::808:808", false}, // NAT64 of a public address: still refused
		{"64:ff9b:1::1", false},
		{"100::1", false},
		{"100:0:0:1::1", false},
		{"2001::1", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
		{"2001:2::1", false},
		{"2001:db8::1", false},
		{"2002:7f00:1::1", false}, // 6to4 of 127.0.0.1
		{"2002:808:808::1", false},
		{"2620:4f:8000::1", false},
		{"3fff::1", false},
		{"5f00::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fec0::1", false},
		{"ff02::1", false},
		{"4000::1", false}, // outside 2000::/3
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"100.63.255.255", true},
		{"100.128.0.0", true},
		{"172.32.0.1", true},
		{"192.0.1.1", true},
		{"198.17.255.255", true},
		{"198.20.0.1", true},
		{"223.255.255.254", true},
		{"::ffff:8.8.8.8", true},
		{"2606:4700:4700::1111", true},
		{"2001:4860:4860::8888", true},
		{"2a00:1450:4001::1", true},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := residents.PublicAddr(a); got != tt.public {
			t.Errorf("publicAddr(%v) = %v, want %v", a, got, tt.public)
		}
		if got := residents.PrivateHost(tt.addr); got == tt.public {
			t.Errorf("privateHost(%q) = %v, want %v", tt.addr, got, !tt.public)
		}
		if a.Zone() != "" {
			continue // a dialer never sees a zone here
		}
		err := residents.RefusePrivate("tcp", net.JoinHostPort(tt.addr, "443"), nil)
		if (err == nil) != tt.public {
			t.Errorf("refusePrivate(%s) = %v, want refused %v", tt.addr, err, !tt.public)
		}
	}
}

// TestPrivateHostNames: special-use names and numeric forms of an IPv4
// address are refused at subscribe time; ordinary names are not.
func TestPrivateHostNames(t *testing.T) {
	for host, private := range map[string]bool{
		"localhost":          true,
		"LOCALHOST.":         true,
		"api.localhost":      true,
		"printer.local":      true,
		"nas.home.arpa":      true,
		"metadata.internal":  true,
		"x.test":             true,
		"x.invalid":          true,
		"127.1":              true,
		"2130706433":         true,
		"0x7f000001":         true,
		"0x7f.1":             true,
		"hooks.example.org":  false,
		"sms.gateway.io":     false,
		"a1.b2.example.com":  false,
		"hooks.example.org.": false,
	} {
		if got := residents.PrivateHost(host); got != private {
			t.Errorf("privateHost(%q) = %v, want %v", host, got, private)
		}
	}
}
