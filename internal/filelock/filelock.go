// Package filelock takes flock(2) locks on files, the way dockhand's
// processes (jobs, credential helper calls, builder starts) coordinate on one
// host. A lock dies with its process, so a crashed holder never wedges others;
// a live but stuck holder costs a waiter its bound, never more: every wait is
// bounded and cancellable, and says who holds the lock when it gives up.
package filelock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrTimeout is returned when a lock was not had within its bound.
var ErrTimeout = errors.New("timed out waiting for a lock")

// DefaultWait bounds a wait given as 0: no dockhand lock is held for long,
// so a wait this long means a stuck holder.
const DefaultWait = 30 * time.Second

// WaitError is a wait that ended without the lock: its bound passed
// (errors.Is ErrTimeout) or its context ended (errors.Is ctx.Err()).
type WaitError struct {
	Path    string
	Waited  time.Duration
	Holders []int // the pids /proc/locks names as holding the lock, if any
	Err     error // ErrTimeout or the context's error
}

func (e *WaitError) Error() string {
	msg := fmt.Sprintf("waited %s for the lock %s", e.Waited.Round(time.Millisecond), e.Path)
	if len(e.Holders) > 0 {
		msg += ", held by " + DescribePids(e.Holders)
	}
	if errors.Is(e.Err, ErrTimeout) {
		return msg + "; gave up"
	}
	return msg + ": " + e.Err.Error()
}

func (e *WaitError) Unwrap() error { return e.Err }

// Lock takes an exclusive lock on path (created 0600), waiting at most wait
// (DefaultWait when 0) and no longer than ctx lasts. The returned func
// releases it.
func Lock(ctx context.Context, path string, wait time.Duration) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	return lockOpen(ctx, f, path, wait)
}

// Busy reports whether the existing lock at path stays held for wait: it
// takes the lock and lets it go at once, or returns the *WaitError naming
// the holders. It creates nothing.
func Busy(ctx context.Context, path string, wait time.Duration) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("opening lock %s: %w", path, err)
	}
	release, err := lockOpen(ctx, f, path, wait)
	if err == nil {
		release()
	}
	return err
}

// lockOpen locks the open file f as Lock says; it owns f from then on.
func lockOpen(ctx context.Context, f *os.File, path string, wait time.Duration) (release func(), err error) {
	if wait <= 0 {
		wait = DefaultWait
	}
	fd := int(f.Fd())
	// Uncontended, the usual case, the lock is had at once.
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- unix.Flock(fd, unix.LOCK_EX) }()
		t := time.NewTimer(wait)
		defer t.Stop()
		var cause error
		select {
		case err = <-done:
		case <-t.C:
			cause = ErrTimeout
		case <-ctx.Done():
			cause = ctx.Err()
		}
		if cause != nil {
			holders := Holders(f)
			// The flock call stays blocked; if it gets the lock later, it
			// is let go at once.
			go func() {
				<-done
				f.Close()
			}()
			return nil, &WaitError{Path: path, Waited: time.Since(start), Holders: holders, Err: cause}
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// Holders returns the pids holding a flock on f's file, from /proc/locks
// (nil where that is not readable).
func Holders(f *os.File) []int {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return nil
	}
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return nil
	}
	defer locks.Close()
	var pids []int
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 3907 fe:00:9986081 0 EOF"; waiters
		// have "->" after the number.
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != id {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// DescribePids names each pid with its command name (never its arguments,
// which may hold another program's secrets), as far as /proc tells.
func DescribePids(pids []int) string {
	var parts []string
	for _, pid := range pids {
		s := "pid " + strconv.Itoa(pid)
		if comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && len(comm) > 0 {
			s += " (" + strings.TrimSpace(string(comm)) + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
