//go:build linux

package replay

import (
	"os"

	"golang.org/x/sys/unix"
)

// punch frees the disk blocks of a range of f, which then reads as zeros:
// a dropped chunk's space comes back while the rest of its segment lives.
// The file's length is kept, so the offsets after it stay valid.
func punch(f *os.File, off, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Control(func(fd uintptr) {
		perr = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
	if err != nil {
		return err
	}
	if perr == unix.EOPNOTSUPP {
		return nil // a file system without holes: the space comes back with the segment
	}
	return perr
}
