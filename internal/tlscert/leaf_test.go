package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLeafNotCA: the self-signed certificate a node makes is a server leaf
// that cannot sign other certificates (a user who trusts it for the
// phone's camera page trusts nothing else with it), valid for a short
// while; a CA certificate an older version made is made again as a leaf.
func TestLeafNotCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hosts := []string{"localhost", "127.0.0.1"}
	writeOldCA(t, dir, hosts, now)
	c, err := Load(Config{Dir: dir, Hosts: hosts, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.TLS.Leaf
	switch {
	case !c.Created:
		t.Fatal("the old CA certificate was kept")
	case leaf.IsCA || leaf.KeyUsage&x509.KeyUsageCertSign != 0:
		t.Fatalf("IsCA %v, key usage %b: the certificate can sign others", leaf.IsCA, leaf.KeyUsage)
	case leaf.NotAfter.Sub(now) > DefaultValidity+time.Hour || DefaultValidity > 31*24*time.Hour:
		t.Fatalf("valid until %s (%s)", leaf.NotAfter, leaf.NotAfter.Sub(now))
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Fatalf("extended key usage %v", leaf.ExtKeyUsage)
	}
	// It is renewed within a few days of its end, not used to the last day.
	later := leaf.NotAfter.Add(-renewBefore + time.Minute)
	again, err := Load(Config{Dir: dir, Hosts: hosts, Now: func() time.Time { return later }})
	if err != nil || !again.Created {
		t.Fatalf("not renewed %s before its end: %v", renewBefore, err)
	}
}

// writeOldCA writes the certificate earlier versions made: a CA valid for
// 397 days.
func writeOldCA(t *testing.T, dir string, hosts []string, now time.Time) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Peerscope node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(397 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		DNSNames: []string{hosts[0]}, IPAddresses: []net.IP{net.ParseIP(hosts[1])},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, CertFileName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFileName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
}
