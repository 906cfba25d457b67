package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside Config.Dir.
const (
	CertFileName = "cert.pem"
	KeyFileName  = "key.pem"
)

// Errors.
var (
	// ErrConfig is returned for a configuration that cannot work.
	ErrConfig = errors.New("tlscert: invalid configuration")
	// ErrBadFile wraps a certificate or key file that cannot be used.
	ErrBadFile = errors.New("tlscert: unusable certificate or key file")
)

// Config says where the certificate comes from.
type Config struct {
	// CertFile and KeyFile name a user-provided PEM certificate (chain) and
	// key. When both are set they are loaded as they are, and Dir is unused.
	CertFile, KeyFile string

	// Dir holds the self-signed certificate: made there (mode 0600 key) on
	// first run, reused after, and made again when it has expired, expires
	// within a day, or does not cover one of Hosts.
	Dir string

	// Hosts are the names and IP addresses the certificate must cover. Empty
	// means LocalHosts(): localhost, the machine's host name and its
	// interface addresses.
	Hosts []string

	// Validity of a new self-signed certificate; zero means
	// DefaultValidity.
	Validity time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultValidity is how long a self-signed certificate is valid: short,
// so that a copied key is soon worth nothing; it is made again renewBefore
// its end, at a start of the node.
const DefaultValidity = 30 * 24 * time.Hour

// renewBefore is how long before its end a self-signed certificate is
// made again.
const renewBefore = 3 * 24 * time.Hour

// Cert is a certificate ready for a tls.Config.
type Cert struct {
	TLS *tls.Certificate
	// Fingerprint is the SHA-256 of the leaf certificate, as hex pairs
	// separated by colons, the way browsers show it.
	Fingerprint string
	// SelfSigned is true for a certificate this package made.
	SelfSigned bool
	// Created is true when this call made a new certificate.
	Created bool
}

// TLSConfig returns a server tls.Config serving c.
func (c *Cert) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{*c.TLS}, MinVersion: tls.VersionTLS12}
}

// Load returns the user's certificate when CertFile and KeyFile are set,
// otherwise the self-signed one in Dir, making it first when needed.
func Load(cfg Config) (*Cert, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	switch {
	case cfg.CertFile != "" || cfg.KeyFile != "":
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, fmt.Errorf("%w: a certificate file needs its key file and the other way round", ErrConfig)
		}
		pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
		}
		return newCert(&pair, false, false), nil
	case cfg.Dir == "":
		return nil, fmt.Errorf("%w: neither a certificate file nor a directory for a self-signed one", ErrConfig)
	case cfg.Validity < 0:
		return nil, fmt.Errorf("%w: negative validity", ErrConfig)
	}
	hosts := cfg.Hosts
	if len(hosts) == 0 {
		hosts = LocalHosts()
	}
	certPath := filepath.Join(cfg.Dir, CertFileName)
	keyPath := filepath.Join(cfg.Dir, KeyFileName)
	// A missing, damaged, expiring or too narrow pair is made again (and a
	// CA certificate, which versions before the leaf made): it is ours to
	// make.
	if pair, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && usable(pair.Leaf, hosts, cfg.Now()) {
		return newCert(&pair, true, false), nil
	}
	pair, err := create(certPath, keyPath, hosts, cfg.Now(), cfg.Validity)
	if err != nil {
		return nil, err
	}
	return newCert(pair, true, true), nil
}

func newCert(pair *tls.Certificate, self, created bool) *Cert {
	sum := sha256.Sum256(pair.Certificate[0])
	hexed := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(hexed); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(hexed[i : i+2])
	}
	return &Cert{TLS: pair, Fingerprint: b.String(), SelfSigned: self, Created: created}
}

// usable reports whether leaf is a leaf (not a CA), still valid for
// renewBefore and covers hosts.
func usable(leaf *x509.Certificate, hosts []string, now time.Time) bool {
	if leaf == nil || leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign != 0 ||
		now.Before(leaf.NotBefore) || now.Add(renewBefore).After(leaf.NotAfter) {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(leaf.DNSNames, h) {
			return false
		}
	}
	return true
}

func create(certPath, keyPath string, hosts []string, now time.Time, validity time.Duration) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	// A server leaf, not a CA: a user who accepts it for the camera page
	// trusts nothing else with it.
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Peerscope node", Organization: []string{"Peerscope (self-signed)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return nil, err
	}
	// The key goes first and both are renamed into place, so a crash never
	// leaves a certificate without its key.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &pair, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// LocalHosts returns the names a LAN visitor may use for this machine:
// localhost, the host name (and name.local, for mDNS), and every address
// of every interface that is up, loopback included.
func LocalHosts() []string {
	hosts := []string{"localhost"}
	if name, err := os.Hostname(); err == nil && name != "" && name != "localhost" {
		hosts = append(hosts, name)
		if !strings.Contains(name, ".") {
			hosts = append(hosts, name+".local")
		}
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsMulticast() {
				continue
			}
			hosts = append(hosts, ipn.IP.String())
		}
	}
	slices.Sort(hosts[1:])
	return slices.Compact(hosts)
}
