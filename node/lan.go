package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Where a phone on the machine's networks reaches the HTTPS server: the
// LAN addresses, and the names of a real certificate.

// HTTPSLANURLs returns the HTTPS server's base URL at each address a
// phone on the machine's networks may reach it by, when it listens on
// every interface (":8443"): the names of a real certificate
// (Config.CertFile; wildcards left out), then every LAN address
// (lanIPs: IPv4, and IPv6 global or unique-local when it listens on IPv6
// too; never loopback or link-local). Nil without HTTPS or when it
// listens on one address only.
func (n *Node) HTTPSLANURLs() []string {
	if n.httpsLn == nil {
		return nil
	}
	tcp, ok := n.httpsLn.Addr().(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return nil
	}
	port := strconv.Itoa(tcp.Port)
	var out []string
	for _, name := range n.certNames {
		out = append(out, "https://"+net.JoinHostPort(name, port))
	}
	v4only := tcp.IP.To4() != nil // "0.0.0.0": no IPv6
	for _, ip := range lanIPs() {
		if v4only && ip.To4() == nil {
			continue
		}
		out = append(out, "https://"+net.JoinHostPort(ip.String(), port))
	}
	return out
}

// localHostPort names a listening address the way a local (or, with lan,
// a LAN) client reaches it.
func localHostPort(a net.Addr, lan bool) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
		if lan {
			for _, ip := range lanIPs() {
				if ip.To4() != nil {
					host = ip.String()
					break
				}
			}
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// lanIPs returns the addresses of the machine's interfaces that are up
// which another device on its networks may use, the likeliest first:
// private IPv4 (192.168/16, then 10/8, then 172.16/12, where container
// bridges usually are), other IPv4, then IPv6 unique-local and global.
// Loopback, link-local (which needs a zone a URL cannot carry on most
// phones) and multicast addresses are left out.
func lanIPs() []net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip := ipn.IP
			if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
				continue
			}
			if v4 := ip.To4(); v4 != nil {
				ip = v4
			}
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		}
	}
	slices.SortStableFunc(ips, func(a, b net.IP) int { return lanRank(a) - lanRank(b) })
	return ips
}

// lanRank orders lanIPs: lower first.
func lanRank(ip net.IP) int {
	v4 := ip.To4()
	switch {
	case v4 != nil && v4[0] == 192 && v4[1] == 168:
		return 0
	case v4 != nil && v4[0] == 10:
		return 1
	case v4 != nil && v4[0] == 172 && v4[1]&0xf0 == 16:
		return 2
	case v4 != nil:
		return 3
	case ip.IsPrivate(): // fc00::/7
		return 4
	}
	return 5
}

// certNames returns the host names of the certificate Config.CertFile
// names (none for the self-signed one, and wildcards left out: a URL
// needs one name).
func certNames(cfg Config) ([]string, error) {
	if cfg.CertFile == "" || cfg.NoHTTPS {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate %s, key %s: %w", ErrConfig, cfg.CertFile, cfg.KeyFile, err)
	}
	var names []string
	for _, name := range pair.Leaf.DNSNames {
		if !strings.Contains(name, "*") {
			names = append(names, name)
		}
	}
	return names, nil
}
