// Package dirlock keeps two processes from running from one data
// directory: the first takes a lock file there (LockFile) and holds it
// until Release or its exit; a second finds it taken at once (ErrLocked)
// instead of waiting on a store inside the directory.
//
// The lock is advisory (flock on Unix) and dies with the process, so a
// crash leaves nothing to clean up. Where flock is missing, Acquire takes
// no lock and the stores' own locks still guard the files.
package dirlock
