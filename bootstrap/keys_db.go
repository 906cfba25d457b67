package bootstrap

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// The key ring in the database. On PostgreSQL, replicas (several
// bootstrap processes on one database, behind one name) must be one
// bootstrap to nodes: one identity key (the fingerprint nodes pin), one
// set of attestation keys, one secret (phone hashes, sealed tokens). So
// there the ring lives in the database (migration 14, key_ring: the key
// file's JSON in one row and a version), not under each process's --data:
//
//	start:   no row ─► store the key file in --data (or fresh keys, kept there too) ─► load the row
//	         a row  ─► load it; refuse to start if --data's key file is another bootstrap's
//	rotate / revoke (any process): row locked, changed, version raised
//	running: reload reads the version (one small query); when it moved, the ring
//
// The database then holds secrets; its backups are as private as the key
// file was.

// keyRingTimeout bounds reload's queries: reload is called without a
// context of its own, and a stalled database must not hold a signature
// back for long (the keys loaded are kept).
const keyRingTimeout = 5 * time.Second

// loadKeyRing returns the ring kept in the database, storing one first if
// there is none: the key file in dir if there is one, else fresh keys
// (from rnd, written to dir's key file too). A key file in dir that holds
// another bootstrap's keys makes it refuse: a replica serving its own
// identity beside the database's would be two bootstraps behind one name.
func (s *Store) loadKeyRing(ctx context.Context, dir string, rnd io.Reader) (*KeyRing, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	path := "" // no data directory, no key file
	local, haveLocal := keyFile{}, false
	if dir != "" {
		path = filepath.Join(dir, KeyFile)
		f, err := readKeyFile(path)
		switch {
		case err == nil:
			local, haveLocal = f, true
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	f, v, err := s.keyRingRow(ctx, s.r)
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.storeKeyRing(ctx, path, local, haveLocal, rnd); err != nil {
			return nil, err
		}
		f, v, err = s.keyRingRow(ctx, s.w)
	}
	if err != nil {
		return nil, err
	}
	k, err := newKeyRing(f)
	if err != nil {
		return nil, fmt.Errorf("the database's key ring: %w", err)
	}
	if haveLocal {
		if err := sameBootstrap(k, local, path); err != nil {
			return nil, err
		}
	}
	k.db, k.version = s, v
	return k, nil
}

// storeKeyRing stores the first ring in an empty key_ring: local (the key
// file at path, if haveLocal) or fresh keys from rnd.
func (s *Store) storeKeyRing(ctx context.Context, path string, local keyFile, haveLocal bool, rnd io.Reader) error {
	first := local
	if !haveLocal {
		var err error
		if first, err = freshKeyFile(rnd); err != nil {
			return err
		}
	}
	if len(first.Identity) == 0 { // a key file from before the identity key
		first.Identity = make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(rnd, first.Identity); err != nil {
			return fmt.Errorf("bootstrap: new identity key: %w", err)
		}
	}
	if _, err := newKeyRing(first); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	b, err := json.Marshal(first)
	if err != nil {
		return err
	}
	// Replicas starting together: the first insert stands, and
	// everyone loads it below.
	res, err := s.w.ExecContext(ctx, `INSERT INTO key_ring (slot, ring, version, updated) VALUES (1, ?, 1, ?) ON CONFLICT (slot) DO NOTHING`,
		b, time.Now().UnixNano())
	if err != nil {
		return fmt.Errorf("bootstrap: store the key ring: %w", err)
	}
	// New keys that went in are kept in --data too, as a bootstrap always
	// kept its keys: that process's key file is then the database's
	// bootstrap, and a copy of it is one way to tell a replica which
	// bootstrap it is to be (with none, it takes the database's).
	if n, _ := res.RowsAffected(); n == 1 && !haveLocal && path != "" {
		if err := writeKeyFile(path, first); err != nil {
			return err
		}
	}
	return nil
}

// sameBootstrap checks that the key file at path (f) is k's bootstrap's:
// the same identity key (if it has one yet) and the same secret. Its
// attestation keys may be older: the database's are the ones served.
func sameBootstrap(k *KeyRing, f keyFile, path string) error {
	local := "one from before identity keys"
	if len(f.Identity) == ed25519.SeedSize {
		local = api.Fingerprint(ed25519.NewKeyFromSeed(f.Identity).Public().(ed25519.PublicKey))
	}
	if local != k.id && len(f.Identity) != 0 || !bytes.Equal(f.Secret, k.secret) {
		return fmt.Errorf("%w: the key file %s is bootstrap %s, but the database holds the keys of bootstrap %s: replicas on one database serve its identity only. Move the key file away to serve %s from here, or give this bootstrap a database of its own",
			ErrConfig, path, local, k.id, k.id)
	}
	return nil
}

// keyRingRow reads the database's ring and its version through q (the
// readers, or the writer to see its own insert).
func (s *Store) keyRingRow(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (keyFile, int64, error) {
	var b []byte
	var v int64
	if err := q.QueryRowContext(ctx, `SELECT ring, version FROM key_ring WHERE slot = 1`).Scan(&b, &v); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return keyFile{}, 0, err
		}
		return keyFile{}, 0, fmt.Errorf("bootstrap: read the key ring: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return keyFile{}, 0, fmt.Errorf("%w: the database's key ring: %w", ErrConfig, err)
	}
	return f, v, nil
}

// reloadDB takes the database's ring if its version moved since it was
// loaded: a rotation or revocation by another process. Unchanged, it costs
// one query of one integer.
func (k *KeyRing) reloadDB() (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), keyRingTimeout)
	defer cancel()
	var v int64
	if err := k.db.r.QueryRowContext(ctx, `SELECT version FROM key_ring WHERE slot = 1`).Scan(&v); err != nil {
		return false, fmt.Errorf("bootstrap: key ring version: %w", err)
	}
	k.mu.RLock()
	same := v == k.version
	k.mu.RUnlock()
	if same {
		return false, nil
	}
	f, v, err := k.db.keyRingRow(ctx, k.db.r)
	if err != nil {
		return false, err
	}
	n, err := newKeyRing(f)
	if err != nil {
		return false, fmt.Errorf("the database's key ring: %w", err)
	}
	if n.id != k.id || !bytes.Equal(n.secret, k.secret) {
		return false, fmt.Errorf("%w: the database's key ring is now another bootstrap's (%s): kept the one loaded (%s)", ErrConfig, n.id, k.id)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if v <= k.version { // a concurrent reload took a newer one
		return false, nil
	}
	k.key, k.set, k.version = n.key, n.set, v
	return true, nil
}

// RotateKeyRingAt is RotateKeyRing for a bootstrap whose data directory is
// dir and database db (as the daemon takes them): on PostgreSQL the ring
// is the database's, and every replica on it picks the new key up (the
// next time it signs or refreshes its trust statement); else it is the key
// file in dir.
func RotateKeyRingAt(ctx context.Context, dir, db string, now time.Time, rnd io.Reader) (*KeyRing, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if !isPostgresURL(db) {
		if dir == "" {
			return nil, fmt.Errorf("%w: no data directory: the key file lives there", ErrConfig)
		}
		return RotateKeyRing(dir, now, rnd)
	}
	return updateKeyRing(ctx, db, now, func(old *KeyRing) (keyFile, error) { return rotated(old, now, rnd) })
}

// RevokeKeyAt is RevokeKey for a bootstrap whose data directory is dir and
// database db, as RotateKeyRingAt.
func RevokeKeyAt(ctx context.Context, dir, db string, pub ed25519.PublicKey, now time.Time, rnd io.Reader) (*KeyRing, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if !isPostgresURL(db) {
		if dir == "" {
			return nil, fmt.Errorf("%w: no data directory: the key file lives there", ErrConfig)
		}
		return RevokeKey(dir, pub, now, rnd)
	}
	return updateKeyRing(ctx, db, now, func(old *KeyRing) (keyFile, error) { return revoked(old, pub, now, rnd) })
}

// updateKeyRing replaces the ring in the PostgreSQL database db with what
// change makes of it (at now), and raises its version, in one transaction
// that holds the row: two operators rotating at once rotate twice, in turn.
func updateKeyRing(ctx context.Context, db string, now time.Time, change func(*KeyRing) (keyFile, error)) (*KeyRing, error) {
	st, err := OpenStore(ctx, db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var k *KeyRing
	err = st.tx(ctx, func(tx *sql.Tx) error {
		var b []byte
		err := tx.QueryRowContext(ctx, `SELECT ring FROM key_ring WHERE slot = 1 FOR UPDATE`).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: the database holds no key ring yet: the first bootstrap started on it stores one (its --data key file's, or new keys)", ErrConfig)
		}
		if err != nil {
			return fmt.Errorf("bootstrap: read the key ring: %w", err)
		}
		var f keyFile
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%w: the database's key ring: %w", ErrConfig, err)
		}
		old, err := newKeyRing(f)
		if err != nil {
			return fmt.Errorf("the database's key ring: %w", err)
		}
		if f, err = change(old); err != nil {
			return err
		}
		if k, err = newKeyRing(f); err != nil {
			return err
		}
		if b, err = json.Marshal(f); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE key_ring SET ring = ?, version = version + 1, updated = ? WHERE slot = 1`, b, now.UnixNano())
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// freshKeyFile is a new bootstrap's keys, from rnd.
func freshKeyFile(rnd io.Reader) (keyFile, error) {
	f := keyFile{Seed: make([]byte, ed25519.SeedSize), Secret: make([]byte, 32), Identity: make([]byte, ed25519.SeedSize)}
	for _, b := range [][]byte{f.Secret, f.Seed, f.Identity} {
		if _, err := io.ReadFull(rnd, b); err != nil {
			return keyFile{}, fmt.Errorf("bootstrap: new keys: %w", err)
		}
	}
	return f, nil
}
