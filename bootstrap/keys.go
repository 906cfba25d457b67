package bootstrap

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
	"github.com/peerscope/peerscope/identity"
)

// KeyFile holds the bootstrap's attestation keys under the data
// directory: the current private key, and the public keys it retired with
// their windows (what /api/v1/info publishes).
const KeyFile = "attestation-keys.json"

// keyFile is KeyFile's form. The seeds and the secret are secrets.
type keyFile struct {
	Seed []byte `json:"seed"` // ed25519 seed of the current attestation key
	// Identity is the ed25519 seed of the bootstrap's identity key, which
	// is never rotated: its fingerprint is the bootstrap's ID (what signed
	// requests name and nodes pin), and it signs the trust statement (the
	// attestation keys and the revocations). Files from before it get one
	// when loaded.
	Identity []byte `json:"identity,omitempty"`
	// Secret keys the hashes of phone numbers and codes (not rotated: the
	// phone accounts' IDs derive from it).
	Secret  []byte         `json:"secret"`
	From    time.Time      `json:"from,omitzero"`
	Retired []identity.Key `json:"retired,omitempty"`
}

// KeyRing is the bootstrap's keys: its identity key, its attestation
// signing key and its published key set. A running bootstrap picks up what
// `peerscope bootstrap --rotate-key` or `--revoke-key` wrote to its key
// file, or to the database's key ring on PostgreSQL (reload, from the
// trust statement's refresh and before signing).
type KeyRing struct {
	secret []byte
	ident  ed25519.PrivateKey
	id     string

	mu   sync.RWMutex
	key  ed25519.PrivateKey
	set  identity.KeySet
	path string // the key file; "" for a ring not loaded from one
	mod  time.Time
	size int64

	db      *Store // the database holding the ring (keys_db.go); nil for a key file
	version int64  // the database ring's version loaded
}

// ID returns the bootstrap's ID: the fingerprint of its identity key
// (api.Fingerprint), which signed requests name and nodes pin.
func (k *KeyRing) ID() string { return k.id }

// IdentityKey returns the bootstrap's identity key (public).
func (k *KeyRing) IdentityKey() ed25519.PublicKey { return k.ident.Public().(ed25519.PublicKey) }

// signTrust signs a trust statement with the identity key.
func (k *KeyRing) signTrust(st api.TrustStatement) (*api.Signed, error) {
	st.Bootstrap = k.id
	return api.SignTrust(k.ident, st)
}

// Key returns the current signing key.
func (k *KeyRing) Key() ed25519.PrivateKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.key
}

// KeySet returns what the bootstrap publishes: the current key first, then
// the retired ones.
func (k *KeyRing) KeySet() identity.KeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.set
}

// reload reads the key file again if it changed since it was read: a
// rotation or a revocation made by another process. A file whose identity
// key or secret differ is not taken (it is another bootstrap's).
func (k *KeyRing) reload() (changed bool, err error) {
	if k.db != nil {
		return k.reloadDB()
	}
	if k.path == "" {
		return false, nil
	}
	fi, err := os.Stat(k.path)
	if err != nil {
		return false, fmt.Errorf("bootstrap: key file: %w", err)
	}
	k.mu.RLock()
	same := fi.ModTime().Equal(k.mod) && fi.Size() == k.size
	k.mu.RUnlock()
	if same {
		return false, nil
	}
	f, err := readKeyFile(k.path)
	if err != nil {
		return false, err
	}
	n, err := newKeyRing(f)
	if err != nil {
		return false, err
	}
	if n.id != k.id || !bytes.Equal(n.secret, k.secret) {
		return false, fmt.Errorf("%w: %s now holds another bootstrap's keys: kept the ones loaded", ErrConfig, k.path)
	}
	k.mu.Lock()
	k.key, k.set, k.mod, k.size = n.key, n.set, fi.ModTime(), fi.Size()
	k.mu.Unlock()
	return true, nil
}

func newKeyRing(f keyFile) (*KeyRing, error) {
	if len(f.Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: attestation key seed of %d bytes", ErrConfig, len(f.Seed))
	}
	key := ed25519.NewKeyFromSeed(f.Seed)
	set := identity.KeySet{Keys: append([]identity.Key{{Public: key.Public().(ed25519.PublicKey), From: f.From}}, f.Retired...)}
	if err := set.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(f.Secret) < 32 {
		return nil, fmt.Errorf("%w: secret of %d bytes", ErrConfig, len(f.Secret))
	}
	if len(f.Identity) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: identity key seed of %d bytes", ErrConfig, len(f.Identity))
	}
	ident := ed25519.NewKeyFromSeed(f.Identity)
	return &KeyRing{key: key, set: set, secret: f.Secret, ident: ident, id: api.Fingerprint(ident.Public().(ed25519.PublicKey))}, nil
}

// LoadKeyRing reads the key file in dir, creating a fresh key (from rnd)
// if there is none. The file is written atomically with mode 0600.
func LoadKeyRing(dir string, rnd io.Reader) (*KeyRing, error) {
	k, err := loadKeyRing(dir, rnd)
	if err != nil {
		return nil, err
	}
	k.path = filepath.Join(dir, KeyFile)
	if fi, err := os.Stat(k.path); err == nil {
		k.mod, k.size = fi.ModTime(), fi.Size()
	}
	return k, nil
}

func readKeyFile(path string) (keyFile, error) {
	var f keyFile
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("bootstrap: attestation keys: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	return f, nil
}

func loadKeyRing(dir string, rnd io.Reader) (*KeyRing, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		f, err := freshKeyFile(rnd)
		if err != nil {
			return nil, err
		}
		if err := writeKeyFile(path, f); err != nil {
			return nil, err
		}
		return newKeyRing(f)
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap: attestation keys: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	if len(f.Identity) == 0 {
		// A key file from before the identity key: it gets one, once.
		f.Identity = make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(rnd, f.Identity); err != nil {
			return nil, fmt.Errorf("bootstrap: new identity key: %w", err)
		}
		if _, err := newKeyRing(f); err != nil {
			return nil, err
		}
		if err := writeKeyFile(path, f); err != nil {
			return nil, err
		}
	}
	return newKeyRing(f)
}

// RotateKeyRing retires the current key in dir at now and makes a new one
// (from rnd) current: attestations the old key issued before now stay
// valid until they expire, in every node that reads the new key set.
func RotateKeyRing(dir string, now time.Time, rnd io.Reader) (*KeyRing, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	path := filepath.Join(dir, KeyFile)
	old, err := LoadKeyRing(dir, rnd)
	if err != nil {
		return nil, err
	}
	f, err := rotated(old, now, rnd)
	if err != nil {
		return nil, err
	}
	if err := writeKeyFile(path, f); err != nil {
		return nil, err
	}
	return LoadKeyRing(dir, rnd)
}

// rotated is old's key file with its current key retired at now and a new
// one (from rnd) current.
func rotated(old *KeyRing, now time.Time, rnd io.Reader) (keyFile, error) {
	set := old.KeySet()
	cur, _ := set.Current()
	if !now.After(cur.From) {
		return keyFile{}, fmt.Errorf("%w: cannot retire a key at %s, before it started", ErrConfig, now)
	}
	f := keyFile{Seed: make([]byte, ed25519.SeedSize), Secret: old.secret, Identity: old.ident.Seed(), From: now,
		Retired: append([]identity.Key{{Public: cur.Public, From: cur.From, Until: now}}, set.Keys[1:]...)}
	if _, err := io.ReadFull(rnd, f.Seed); err != nil {
		return keyFile{}, fmt.Errorf("bootstrap: new attestation key: %w", err)
	}
	return f, nil
}

// RevokeKey marks an attestation key revoked in the key file in dir: one
// that leaked. Nodes stop believing anything it signed, whenever it says it
// did, as soon as they read the trust statement again (a running bootstrap
// picks the change up within a second). The current key is first retired
// at now and a new one (from rnd) made current: revoking it is a rotation
// too. The attestations it signed are re-issued by the new key when their
// nodes ask for them (GET /api/v1/attestation) while signed in.
func RevokeKey(dir string, pub ed25519.PublicKey, now time.Time, rnd io.Reader) (*KeyRing, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	old, err := LoadKeyRing(dir, rnd)
	if err != nil {
		return nil, err
	}
	f, err := revoked(old, pub, now, rnd)
	if err != nil {
		return nil, err
	}
	if err := writeKeyFile(filepath.Join(dir, KeyFile), f); err != nil {
		return nil, err
	}
	return LoadKeyRing(dir, rnd)
}

// revoked is old's key file with pub revoked, the current key rotated
// first (at now, the new one from rnd) if pub is it.
func revoked(old *KeyRing, pub ed25519.PublicKey, now time.Time, rnd io.Reader) (keyFile, error) {
	var f keyFile
	if cur, _ := old.KeySet().Current(); cur.Public.Equal(pub) {
		var err error
		if f, err = rotated(old, now, rnd); err != nil {
			return keyFile{}, err
		}
	} else {
		f = old.file()
	}
	found := false
	for i := range f.Retired {
		if f.Retired[i].Public.Equal(pub) {
			f.Retired[i].Revoked, found = true, true
		}
	}
	if !found {
		return keyFile{}, fmt.Errorf("%w: %x is not one of this bootstrap's attestation keys", ErrNotFound, []byte(pub))
	}
	return f, nil
}

// file is the key file that holds k.
func (k *KeyRing) file() keyFile {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return keyFile{Seed: k.key.Seed(), Secret: k.secret, Identity: k.ident.Seed(), From: k.set.Keys[0].From, Retired: slices.Clone(k.set.Keys[1:])}
}

func writeKeyFile(path string, f keyFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("bootstrap: write keys: %w", err)
	}
	if _, err := fh.Write(b); err != nil {
		fh.Close()
		return fmt.Errorf("bootstrap: write keys: %w", err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("bootstrap: write keys: %w", err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("bootstrap: write keys: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bootstrap: write keys: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
