// Package tlscert gives the node a TLS certificate for its HTTPS listener,
// so that phone browsers, which grant the camera only to secure origins, can
// open the broadcaster page.
//
// A user who has a real certificate names its files; everyone else gets a
// self-signed ECDSA P-256 server leaf (not a CA: it can sign nothing
// else), valid for 30 days, made on first run and kept in a directory,
// with the machine's host names and LAN addresses as subject alternative
// names. The browser warns about it once; the fingerprint the
// node prints lets a careful user check it is the right one.
//
// How data flows: node.New calls Load(Config) — the user's CertFile and
// KeyFile when both are set, otherwise the self-signed certificate in Dir,
// made (or made again: expired, expiring within 3 days, a CA certificate
// of an older version, or missing one of Hosts) when needed — and serves its HTTPS listener with Cert.TLSConfig;
// the command prints Cert.Fingerprint for the user to compare with what
// the phone's browser shows.
package tlscert
