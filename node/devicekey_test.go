package node_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peerscope/peerscope/node"
)

// TestDeviceKeyKept: a node with a data directory makes its audience
// device key once, keeps it there with mode 0600, and has the same key
// after a restart; a damaged file or another identity's key stops the
// start with ErrConfig and is left as it was.
func TestDeviceKeyKept(t *testing.T) {
	dir := t.TempDir()
	n := newNode(t, node.Config{DataDir: dir})
	first := n.DeviceKey().Fingerprint()
	if n.DeviceKey().Peer != n.ID() {
		t.Fatalf("device key of %s on node %s", n.DeviceKey().Peer, n.ID())
	}
	path := filepath.Join(dir, node.DeviceKeyFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("device key file: %v, %v", fi, err)
	}
	_ = n.Close()
	again := newNode(t, node.Config{DataDir: dir})
	if again.DeviceKey().Fingerprint() != first {
		t.Fatal("a restarted node made a new device key")
	}
	_ = again.Close()

	kept, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), kept...)
	damaged[len(damaged)/3] ^= 0x40 // inside the signed key: its signature no longer verifies
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := node.New(t.Context(), node.Config{DataDir: dir, NoHTTPS: true}); !errors.Is(err, node.ErrConfig) {
		t.Fatalf("a damaged device key: %v, want ErrConfig", err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(damaged) {
		t.Fatal("the damaged key file was overwritten")
	}

	// Another identity's key, in this node's directory.
	other := t.TempDir()
	o := newNode(t, node.Config{DataDir: other})
	_ = o.Close()
	theirs, err := os.ReadFile(filepath.Join(other, node.DeviceKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, theirs, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := node.New(t.Context(), node.Config{DataDir: dir, NoHTTPS: true}); !errors.Is(err, node.ErrConfig) {
		t.Fatalf("another node's device key: %v, want ErrConfig", err)
	}
}

// TestDeviceKeyRenewed: a kept key is used until a week before it expires,
// then a new one is made and kept in its place.
func TestDeviceKeyRenewed(t *testing.T) {
	id, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sub", node.DeviceKeyFile)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	k1, err := node.LoadDeviceKey(path, id, rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := node.LoadDeviceKey(path, id, rand.Reader, now.Add(20*24*time.Hour))
	if err != nil || k2.Key.Fingerprint() != k1.Key.Fingerprint() {
		t.Fatalf("20 days on: %v, same key %v", err, err == nil && k2.Key.Fingerprint() == k1.Key.Fingerprint())
	}
	k3, err := node.LoadDeviceKey(path, id, rand.Reader, now.Add(24*24*time.Hour))
	if err != nil || k3.Key.Fingerprint() == k1.Key.Fingerprint() {
		t.Fatalf("24 days on, a week before the expiry: %v, the old key kept", err)
	}
	k4, err := node.LoadDeviceKey(path, id, rand.Reader, now.Add(25*24*time.Hour))
	if err != nil || k4.Key.Fingerprint() != k3.Key.Fingerprint() {
		t.Fatalf("the renewed key was not kept: %v", err)
	}
}
