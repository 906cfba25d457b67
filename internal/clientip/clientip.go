package clientip

import (
	"net"
	"net/netip"
)

// Key returns the client of a remote address ("host:port", as
// http.Request.RemoteAddr and net.Conn.RemoteAddr give it, or a bare
// address). An address that does not parse is its own client: the empty
// string, which every such client shares.
func Key(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// OfAddr is Key for a net.Addr (a connection's RemoteAddr).
func OfAddr(a net.Addr) string {
	if a == nil {
		return ""
	}
	return Key(a.String())
}
