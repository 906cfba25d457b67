// Package clientip names the client behind an HTTP request or a TCP
// connection for the per-client caps and counts of the node's servers
// (WHEP sessions, RTMP handshakes, the browsers it counts as viewers): an
// IPv4 address, or an IPv6 /64 — one household or one host is handed a
// whole /64, so counting its addresses one by one would let it be anybody.
// Nothing the client sends (headers, ports) goes into the name, so a
// client cannot make itself many, and a name is at most 39 bytes however
// long its request.
//
//	http.Request.RemoteAddr, net.Conn.RemoteAddr ─► Key ─► "203.0.113.7" or "2001:db8:1:2::/64"
//	    ─► media/whep (sessions per client), media/rtmp (handshakes per client),
//	       node (browsers counted per client), internal/httpserve (the web servers' caps)
package clientip
