package api

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseBootstrapURL reads a bootstrap's URL as a node is given it:
//
//	https://boot.example                       keys believed as TLS vouches for the host
//	http://boot.example:8090#pin=FINGERPRINT   keys believed only if the pinned identity key signed them
//	http://127.0.0.1:8090                      loopback: this machine's own bootstrap
//
// It returns the base URL and the pin (empty without one). A plain-HTTP
// URL to another machine without a pin is refused: whoever is on the path
// could hand the node keys of their own, and with them every badge.
func ParseBootstrapURL(s string) (base, pin string, err error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return "", "", fmt.Errorf("%w: bootstrap URL %q: want http(s)://host[:port][/path][#pin=FINGERPRINT]", ErrBadRequest, clip(s, 80))
	}
	if u.Fragment != "" {
		p, ok := strings.CutPrefix(u.Fragment, "pin=")
		if !ok || !ValidFingerprint(p) {
			return "", "", fmt.Errorf("%w: bootstrap URL %q: the part after '#' must be pin= and a fingerprint of %d hex digits", ErrBadRequest, clip(s, 80), FingerprintLen)
		}
		pin = p
	}
	u.Fragment, u.RawFragment = "", ""
	base = strings.TrimRight(u.String(), "/")
	if u.Scheme == "http" && pin == "" && !isLoopback(u.Hostname()) {
		return "", "", fmt.Errorf("%w: bootstrap %s: keys fetched over plain http could be anyone's; use https, or pin the bootstrap: %s#pin=FINGERPRINT (the fingerprint its operator publishes; 'peerscope bootstrap' prints it)",
			ErrBadRequest, base, base)
	}
	return base, pin, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
