package tlscert

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSelfSignedMadeOnceThenReused(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := Config{Dir: dir, Hosts: []string{"localhost", "peerscope.local", "127.0.0.1", "192.0.2.7", "::1"}, Now: func() time.Time { return now }}

	first, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || !first.SelfSigned {
		t.Fatalf("first Load: created=%v selfSigned=%v, want both", first.Created, first.SelfSigned)
	}
	leaf := first.TLS.Leaf
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("key is %T, want ECDSA", leaf.PublicKey)
	}
	if err := leaf.VerifyHostname("peerscope.local"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("192.0.2.7"); err != nil {
		t.Error(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, KeyFileName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	second, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Fingerprint != first.Fingerprint {
		t.Fatalf("second Load made a new certificate (%v, %s != %s)", second.Created, second.Fingerprint, first.Fingerprint)
	}

	// A new LAN address the certificate does not name: made again.
	cfg.Hosts = append(cfg.Hosts, "198.18.0.9")
	third, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Created || third.Fingerprint == first.Fingerprint {
		t.Fatal("a certificate missing a host was kept")
	}

	// Close to expiry: made again.
	now = now.Add(397*24*time.Hour - time.Hour)
	fourth, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !fourth.Created {
		t.Fatal("an expiring certificate was kept")
	}
}

func TestDamagedFilesAreReplaced(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CertFileName), []byte("not a certificate"), 0o644)
	os.WriteFile(filepath.Join(dir, KeyFileName), []byte("not a key"), 0o600)
	c, err := Load(Config{Dir: dir, Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Created {
		t.Fatal("damaged files were not replaced")
	}
}

func TestUserProvided(t *testing.T) {
	dir := t.TempDir()
	made, err := Load(Config{Dir: dir, Hosts: []string{"example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(Config{CertFile: filepath.Join(dir, CertFileName), KeyFile: filepath.Join(dir, KeyFileName)})
	if err != nil {
		t.Fatal(err)
	}
	if c.SelfSigned || c.Created || c.Fingerprint != made.Fingerprint {
		t.Fatalf("user certificate: %+v", c)
	}

	_, err = Load(Config{CertFile: filepath.Join(dir, CertFileName)})
	if !errors.Is(err, ErrConfig) {
		t.Errorf("cert without key: %v, want ErrConfig", err)
	}
	_, err = Load(Config{CertFile: filepath.Join(dir, "missing.pem"), KeyFile: filepath.Join(dir, KeyFileName)})
	if !errors.Is(err, ErrBadFile) {
		t.Errorf("missing cert: %v, want ErrBadFile", err)
	}
	if _, err := Load(Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("empty config: %v, want ErrConfig", err)
	}
}

// TestServesHTTPS checks the certificate works end to end: a client that
// trusts it reaches a server on 127.0.0.1 by IP.
func TestServesHTTPS(t *testing.T) {
	c, err := Load(Config{Dir: t.TempDir(), Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.TLS = c.TLSConfig()
	srv.StartTLS()
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AddCert(c.TLS.Leaf)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
}

func TestLocalHosts(t *testing.T) {
	hosts := LocalHosts()
	if hosts[0] != "localhost" {
		t.Errorf("LocalHosts()[0] = %q", hosts[0])
	}
	hasLoopback := false
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			hasLoopback = true
		}
	}
	if !hasLoopback {
		t.Errorf("no loopback address in %v", hosts)
	}
}
