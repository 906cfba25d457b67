package clientip

import (
	"net"
	"net/netip"
)

// Prefix returns the client of a remote address ("host:port", as
// http.Request.RemoteAddr and net.Conn.RemoteAddr give it, or a bare
// address): the address as a /32 for IPv4, its /64 for IPv6. An address
// that does not parse is the zero Prefix, which every such client shares.
func Prefix(remote string) netip.Prefix {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// Key is Prefix as a map key and a name: "203.0.113.7", "2001:db8:1:2::/64",
// or "" for an address that does not parse.
func Key(remote string) string {
	p := Prefix(remote)
	switch {
	case !p.IsValid():
		return ""
	case p.Addr().Is4():
		return p.Addr().String()
	}
	return p.String()
}

// OfAddr is Key for a net.Addr (a connection's RemoteAddr).
func OfAddr(a net.Addr) string {
	if a == nil {
		return ""
	}
	return Key(a.String())
}
