package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockFile is the lock file's name inside the directory.
const LockFile = "lock"

// ErrLocked: another process holds the directory.
var ErrLocked = errors.New("dirlock: the directory is in use by another process")

// Lock is a held directory lock.
type Lock struct {
	f *os.File
}

// Acquire takes dir's lock without waiting, making dir if needed. It
// returns ErrLocked, wrapped with the directory, when another process (or
// another Lock in this one) holds it.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dirlock: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("dirlock: %w", err)
	}
	if err := lock(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("dirlock: %s: %w", dir, err)
	}
	return &Lock{f: f}, nil
}

// Release lets the directory go. It is safe on a nil Lock and to call
// more than once.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}
