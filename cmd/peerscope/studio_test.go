package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"image"
	"image/color"
	"image/png"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/testutil"
)

// lanAddrs is what the studio URLs must cover: every address of an
// interface that is up, bar loopback and link-local.
func lanAddrs(t *testing.T) []net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	var ips []net.IP
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() && !ipn.IP.IsMulticast() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	return ips
}

var studioURL = regexp.MustCompile(`(?m)^  (https://\S+/broadcast/#key=\S+)$`)

// TestStudioOnTheLAN: 'broadcast --from whip' with the HTTPS server on
// every interface prints the go-live page at each LAN address of the
// machine (IPv4, IPv6 global or unique-local; no link-local), a QR code of
// the first that a reader decodes to that very URL, and what the phone
// will say of the self-signed certificate; the page answers there. On the
// loopback default it keeps telling how to reach it from a phone.
func TestStudioOnTheLAN(t *testing.T) {
	base := []string{"broadcast", "--from", "whip", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--data", ""}
	const ready = "Ctrl-C ends the broadcast."

	out := runUntilWith(t, ready, func(string) {}, append(base, "--https", "127.0.0.1:0")...)
	if !strings.Contains(out, "start with --https :8443") || strings.Contains(out, "Scan it") {
		t.Errorf("on loopback:\n%s", out)
	}

	out = runUntilWith(t, ready, func(out string) {
		// The first URL's page answers, while the command runs.
		first := studioURL.FindStringSubmatch(out)
		if first == nil {
			return // said below
		}
		page, _, _ := strings.Cut(first[1], "#")
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
		resp, err := client.Get(page)
		if err != nil {
			t.Errorf("GET %s: %v", page, err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", page, resp.Status)
		}
	}, append(base, "--https", ":0")...)
	ips := lanAddrs(t)
	if len(ips) == 0 {
		if !strings.Contains(out, "no network address found") {
			t.Errorf("a machine without a LAN address:\n%s", out)
		}
		t.Skip("this machine has no LAN address")
	}
	var urls []string
	for _, m := range studioURL.FindAllStringSubmatch(out, -1) {
		urls = append(urls, m[1])
	}
	if len(urls) == 0 {
		t.Fatalf("no studio URL:\n%s", out)
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(urls, func(u string) bool { return strings.HasPrefix(u, "https://"+net.JoinHostPort(ip.String(), "")) }) {
			t.Errorf("no go-live URL for %s in %q", ip, urls)
		}
	}
	if strings.Contains(out, "https://[fe80") || strings.Contains(out, "https://127.0.0.1") {
		t.Errorf("a link-local or loopback URL:\n%s", out)
	}
	for _, w := range []string{`The phone will warn`, `"Advanced", then "Proceed"`, "--tls-cert FILE --tls-key FILE"} {
		if !strings.Contains(out, w) {
			t.Errorf("%q not said:\n%s", w, out)
		}
	}
	if got := decodeQR(t, out); got != urls[0] {
		t.Errorf("the QR code says %q, want the first URL %q", got, urls[0])
	}
}

// runUntilWith runs peerscope with args until its output holds until,
// calls check with the output while the command still runs, then ends the
// command (as Ctrl-C does) and returns all it printed.
func runUntilWith(t *testing.T, until string, check func(string), args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = file, file
	defer func() { os.Stdout, os.Stderr = stdout, stderr }()
	done := make(chan error, 1)
	go func() { done <- run(ctx, args) }()
	read := func() string {
		b, _ := os.ReadFile(file.Name())
		return string(b)
	}
	testutil.WaitFor(t, 60*time.Second, "the command to say "+until, func() bool {
		select {
		case err := <-done:
			t.Fatalf("peerscope %v ended: %v\n%s", args, err, read())
		default:
		}
		return strings.Contains(read(), until)
	})
	check(read())
	cancel()
	<-done
	return read()
}

// decodeQR draws the QR code the command printed (half blocks: light
// modules printed) as an image and reads it with zbarimg.
func decodeQR(t *testing.T, out string) string {
	t.Helper()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zbarimg not found (apt-get install zbar-tools)")
		}
		t.Skip("zbarimg not found (apt-get install zbar-tools)")
	}
	_, qr, ok := strings.Cut(out, "Scan it with the phone's camera:\n")
	if !ok {
		t.Fatalf("no QR code:\n%s", out)
	}
	var rows [][]bool // true: light
	for _, line := range strings.Split(qr, "\n") {
		line = strings.TrimPrefix(line, "  ")
		if line == "" || !strings.ContainsAny(line, "█▀▄") {
			break
		}
		var top, bottom []bool
		for _, r := range line {
			top = append(top, r == '█' || r == '▀')
			bottom = append(bottom, r == '█' || r == '▄')
		}
		rows = append(rows, top, bottom)
	}
	if len(rows) < 21 {
		t.Fatalf("a QR code of %d rows:\n%s", len(rows), qr)
	}
	const scale, margin = 8, 4 // a dark margin, as the terminal around it
	w, h := len(rows[0]), len(rows)
	img := image.NewGray(image.Rect(0, 0, (w+2*margin)*scale, (h+2*margin)*scale))
	for y := range h {
		for x := range w {
			if x < len(rows[y]) && rows[y][x] {
				for dy := range scale {
					for dx := range scale {
						img.SetGray((x+margin)*scale+dx, (y+margin)*scale+dy, color.Gray{Y: 255})
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(zbar, "--quiet", "--raw", path).Output()
	if err != nil {
		t.Fatalf("zbarimg: %v (%s)", err, got)
	}
	return strings.TrimSpace(string(got))
}

// TestStudioRealCertificate: --tls-cert and --tls-key put a real
// certificate on the HTTPS server: the studio URL names its host, and
// nothing is said of a self-signed one; one without the other, or files
// that do not load, are refused with what is wrong.
func TestStudioRealCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "studio.test")
	base := []string{"broadcast", "--from", "whip", "--listen", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--data", ""}

	var served []byte
	out := runUntilWith(t, "Ctrl-C ends the broadcast.", func(out string) {
		first := studioURL.FindStringSubmatch(out)
		if first == nil {
			t.Errorf("no studio URL:\n%s", out)
			return
		}
		u, _ := url.Parse(first[1])
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", u.Port()), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Errorf("TLS to the HTTPS server: %v", err)
			return
		}
		served = conn.ConnectionState().PeerCertificates[0].Raw
		conn.Close()
	}, append(base, "--https", ":0", "--tls-cert", certFile, "--tls-key", keyFile)...)
	urls := studioURL.FindAllStringSubmatch(out, -1)
	if len(urls) == 0 || !strings.HasPrefix(urls[0][1], "https://studio.test:") {
		t.Errorf("the first studio URL does not name the certificate's host:\n%s", out)
	}
	if strings.Contains(out, "will warn") || strings.Contains(out, "self-signed") {
		t.Errorf("a real certificate said to be self-signed:\n%s", out)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(served, pair.Certificate[0]) {
		t.Error("the HTTPS server does not serve the given certificate")
	}

	otherKey := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", certFile}, "--tls-cert FILE and --tls-key FILE go together"},
		{[]string{"--tls-key", keyFile}, "--tls-cert FILE and --tls-key FILE go together"},
		{[]string{"--tls-cert", certFile, "--tls-key", otherKey}, "cannot load them"},
		{[]string{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", keyFile}, "cannot load them"},
	} {
		out, err := capture(t, func() error { return run(t.Context(), append(append(base, "--https", ":0"), tc.args...)) })
		if err != nil {
			out += err.Error()
		}
		if code := exitCode(err); code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit code %d, %q; want 2 and %q", tc.args, code, out, tc.want)
		}
	}
}

// writeCert writes a certificate for host (and loopback) with its key.
func writeCert(t *testing.T, dir, host string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{host, "*.wild.test"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
