package p2pkey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// ErrBadKey is returned for a key file that holds no ed25519 libp2p key.
var ErrBadKey = errors.New("p2pkey: not an ed25519 libp2p private key")

// Load reads the key at path, making (and writing) a new one if there is
// none yet. An empty path gives an ephemeral key.
func Load(path string) (crypto.PrivKey, error) {
	if path == "" {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		return k, err
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadKey, path, err)
		}
		if k.Type() != crypto.Ed25519 {
			return nil, fmt.Errorf("%w: %s", ErrBadKey, path)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	if b, err = crypto.MarshalPrivateKey(k); err != nil {
		return nil, err
	}
	// Written aside and renamed, so a crash never leaves half a key.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return k, nil
}
