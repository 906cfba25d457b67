package p2pkey

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func TestLoadKeepsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "p2p.key")
	k1, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("a second Load made a new key")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", fi, err)
	}
}

func TestLoadRefusesOtherKeys(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(garbage); !errors.Is(err, ErrBadKey) {
		t.Fatalf("garbage: %v", err)
	}
	k, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := crypto.MarshalPrivateKey(k)
	secp := filepath.Join(dir, "secp")
	if err := os.WriteFile(secp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(secp); !errors.Is(err, ErrBadKey) {
		t.Fatalf("secp256k1: %v", err)
	}
}

func TestLoadEphemeral(t *testing.T) {
	a, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Load("")
	if a.Equals(b) {
		t.Fatal("two ephemeral keys are equal")
	}
}
