package residents

import (
	"net/netip"
	"strings"
)

// specialPurpose lists the address blocks a resident's webhook may never
// reach: every block of the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and its updates), whether or not the registry marks
// it globally reachable, plus multicast and the IPv4 reserved block.
// https://www.iana.org/assignments/iana-ipv4-special-registry
// https://www.iana.org/assignments/iana-ipv6-special-registry
var specialPurpose = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		// IPv4.
		"0.0.0.0/8",          // "this network" (RFC 791)
		"10.0.0.0/8",         // private (RFC 1918)
		"100.64.0.0/10",      // shared address space, CGNAT (RFC 6598)
		"127.0.0.0/8",        // loopback (RFC 1122)
		"169.254.0.0/16",     // link-local, cloud metadata (RFC 3927)
		"172.16.0.0/12",      // private (RFC 1918)
		"192.0.0.0/24",       // IETF protocol assignments (RFC 6890), DS-Lite, NAT64 discovery, PCP and TURN anycast
		"192.0.2.0/24",       // TEST-NET-1 (RFC 5737)
		"192.31.196.0/24",    // AS112-v4 (RFC 7535)
		"192.52.193.0/24",    // AMT (RFC 7450)
		"192.88.99.0/24",     // deprecated 6to4 relay anycast (RFC 7526)
		"192.168.0.0/16",     // private (RFC 1918)
		"192.175.48.0/24",    // direct delegation AS112 (RFC 7534)
		"198.18.0.0/15",      // benchmarking (RFC 2544)
		"198.51.100.0/24",    // TEST-NET-2 (RFC 5737)
		"203.0.113.0/24",     // TEST-NET-3 (RFC 5737)
		"224.0.0.0/4",        // multicast (RFC 5771)
		"240.0.0.0/4",        // reserved (RFC 1112), with the limited broadcast 255.255.255.255
		"255.255.255.255/32", // limited broadcast (RFC 919)
		// IPv6. Outside 2000::/3 everything is refused anyway (see
		// publicAddr); the blocks below 2000::/3 are listed for the record.
		"::/128",            // unspecified
		"::1/128",           // loopback
		"::ffff:0:0/96",     // IPv4-mapped (checked as IPv4 first)
		"64:ff9b::/96",      // NAT64 well-known prefix (RFC 6052)
		"64:ff9b:1::/48",    // local-use NAT64 (RFC 8215)
		"100::/64",          // discard-only (RFC 6666)
		"100:0:0:1::/64",    // dummy prefix (RFC 9780)
		"2001::/23",         // IETF protocol assignments: Teredo 2001::/32, benchmarking 2001:2::/48, ORCHID, AMT, AS112...
		"2001:db8::/32",     // documentation (RFC 3849)
		"2002::/16",         // 6to4 (RFC 3056)
		"2620:4f:8000::/48", // direct delegation AS112 (RFC 7534)
		"3fff::/20",         // documentation (RFC 9637)
		"5f00::/16",         // segment routing SIDs (RFC 9602)
		"fc00::/7",          // unique local (RFC 4193)
		"fe80::/10",         // link-local unicast (RFC 4291)
		"fec0::/10",         // deprecated site-local (RFC 3879)
		"ff00::/8",          // multicast (RFC 4291)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// globalUnicast is the only IPv6 block IANA allocates for global unicast.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// publicAddr reports whether a resident's webhook may be posted to a: a
// valid address outside every special-purpose block. An IPv4-mapped IPv6
// address is judged as the IPv4 address it maps; an IPv6 address must be
// in 2000::/3, the global unicast space.
func publicAddr(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("").Unmap()
	if a.Is6() && !globalUnicast.Contains(a) {
		return false
	}
	for _, p := range specialPurpose {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// specialNames are the special-use domain names (RFC 6761, 6762, 8375,
// and the .internal TLD) that name hosts of a private network.
var specialNames = []string{"localhost", "local", "home.arpa", "internal", "invalid", "test"}

// privateHost reports whether the host of a webhook URL is not a public
// address: a literal address that publicAddr refuses, a special-use name,
// or a name whose last label is numeric, which no DNS name has and which
// resolvers read as an IPv4 address in another form ("127.1",
// "2130706433", "0x7f.1"). Delivery checks the resolved address again
// (refusePrivate), whatever the name resolved to.
func privateHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return !publicAddr(a)
	}
	for _, n := range specialNames {
		if h == n || strings.HasSuffix(h, "."+n) {
			return true
		}
	}
	last := h[strings.LastIndex(h, ".")+1:]
	return last == "" || strings.HasPrefix(last, "0x") || strings.Trim(last, "0123456789") == ""
}
