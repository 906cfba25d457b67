// Package clientip names the client behind an HTTP request or a TCP
// connection for the per-client caps and counts of the node's servers
// (WHEP sessions, RTMP handshakes, the browsers it counts as viewers): an
// IPv4 address, or an IPv6 /64 — one household or one host is handed a
// whole /64, so counting its addresses one by one would let it be anybody.
// Nothing the client sends (headers, ports) goes into the name, so a
// client cannot make itself many, and a name is at most 39 bytes however
// long its request.
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
