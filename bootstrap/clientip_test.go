package bootstrap

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		remote, xff string
		trusted     []netip.Prefix
		want        string
	}{
		{"198.51.100.7:4000", "203.0.113.9", nil, "198.51.100.7"},        // no proxies trusted: the header is ignored
		{"198.51.100.7:4000", "203.0.113.9", proxy, "198.51.100.7"},      // not from a trusted proxy
		{"10.1.2.3:4000", "203.0.113.9", proxy, "203.0.113.9"},           // through the proxy
		{"10.1.2.3:4000", "1.1.1.1, 203.0.113.9", proxy, "203.0.113.9"},  // the client's own (forgeable) entry is left of it
		{"10.1.2.3:4000", "203.0.113.9, 10.9.9.9", proxy, "203.0.113.9"}, // two proxies
		{"10.1.2.3:4000", "", proxy, "10.1.2.3"},                         // a proxy that forwards nothing
		{"10.1.2.3:4000", "not-an-address", proxy, "10.1.2.3"},           // garbage counts against the proxy
		{"[::ffff:10.1.2.3]:4000", "2001:db8::1", proxy, "2001:db8::1"},  // v4-mapped proxy address
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := clientIP(r, c.trusted); got != c.want {
			t.Errorf("%s via %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestNetKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":            "198.51.100.7",
		"::ffff:198.51.100.7":     "198.51.100.7",
		"2001:db8:1:2::1":         "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:1:2:3": "2001:db8:1:2::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not an address":          "not an address",
	} {
		if got := netKey(in); got != want {
			t.Errorf("netKey(%q) = %q, want %q", in, got, want)
		}
	}
}
