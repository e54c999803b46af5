// Package filelock takes flock(2) locks on files, the way dockhand's
// processes (jobs, credential helper calls, builder starts) coordinate on one
// host. A lock dies with its process, so a crashed holder never wedges others.
package filelock

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned when a lock was not had within its bound.
var ErrTimeout = errors.New("timed out waiting for a lock")

// Lock takes an exclusive lock on path (created 0600), waiting at most wait
// (0: as long as it takes). The returned func releases it.
func Lock(path string, wait time.Duration) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	// Uncontended, the usual case, the lock is had at once.
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) && wait <= 0 {
		err = unix.Flock(fd, unix.LOCK_EX)
	} else if errors.Is(err, unix.EWOULDBLOCK) {
		done := make(chan error, 1)
		go func() { done <- unix.Flock(fd, unix.LOCK_EX) }()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case err = <-done:
		case <-t.C:
			// The flock call stays blocked; if it gets the lock later, it
			// is let go at once.
			go func() {
				<-done
				f.Close()
			}()
			return nil, fmt.Errorf("%s: %w after %s", path, ErrTimeout, wait)
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
