package bootstrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/safedir"

	"golang.org/x/sys/unix"
)

// The state directory holds one directory per running job:
//
//	STATE/jobs/.lock               taken while a job dir is created or swept
//	STATE/jobs/<job-id>-<random>/  0700, flock(2)ed by the live job's bootstrap
//
// A job dir whose lock can be taken belongs to a job that died without
// cleaning up (SIGKILL, host crash): the kernel dropped its lock. The next
// bootstrap on the host removes it. A live job's dir is never touched.

// JobDir is a job's private directory, locked for as long as the job lives.
type JobDir struct {
	Path string
	lock *os.File
}

// StateDir returns the directory dockhand keeps job dirs in: the configured
// one when it can be created and written and only uid (and root) can change
// it (see safedir.Check), else a private directory under tmpdir. It reports
// why it fell back. The path returned has no symlinks left in it.
func StateDir(configured, tmpdir string, uid int) (dir string, fellBack error, err error) {
	if configured != "" {
		dir, err := trustedDir(configured, uid, false)
		if err == nil {
			return dir, nil, nil
		}
		fellBack = err
	}
	if tmpdir == "" {
		tmpdir = os.TempDir()
	}
	fallback := filepath.Join(tmpdir, fmt.Sprintf("dockhand-%d", uid))
	dir, err = trustedDir(fallback, uid, true)
	if err != nil {
		return "", fellBack, fmt.Errorf("no usable state dir: %s: %w", fallback, err)
	}
	return dir, fellBack, nil
}

// trustedDir creates dir (0700) if needed, checks that it can be written,
// and that no one but uid and root can change it or what is above it.
func trustedDir(dir string, uid int, private bool) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	real, err := safedir.Check(dir, uid, private)
	if err != nil {
		return "", err
	}
	if err := unix.Access(real, unix.W_OK|unix.X_OK); err != nil {
		return "", fmt.Errorf("%s: %w", real, err)
	}
	if err := hasRoom(real); err != nil {
		return "", err
	}
	return real, nil
}

// minFree is the room a job's setup needs in the state dir (its docker
// config, state and locks are a few KiB; builders and tokens as much).
const minFree = 1 << 20

// hasRoom fails with ENOSPC when dir's file system has less than minFree
// bytes (or no inodes) left for dockhand's user.
func hasRoom(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // unknown: the writes will tell
	}
	if free := st.Bavail * uint64(st.Bsize); free < minFree || (st.Files > 0 && st.Ffree == 0) {
		return fmt.Errorf("%s: the disk is full (%d bytes, %d inodes free): %w", dir, free, st.Ffree, unix.ENOSPC)
	}
	return nil
}

// unsafeName is compiled on first use: package initialisation is on the
// start-up path of every dockhand call.
var unsafeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^A-Za-z0-9_.-]+`) })

// CreateJobDir makes and locks a new job dir under state. Waiting for the
// host's other jobs is bounded, and ends with ctx.
func CreateJobDir(ctx context.Context, state, jobID string) (*JobDir, error) {
	jobs := filepath.Join(state, "jobs")
	if err := os.MkdirAll(jobs, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", jobs, err)
	}
	release, err := filelock.Lock(ctx, filepath.Join(jobs, ".lock"), 0)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := os.Chmod(jobs, jobsMode); err != nil {
		return nil, fmt.Errorf("%s: %w", jobs, err)
	}
	// A leading "." would hide the dir from ls and from older sweeps.
	name := strings.TrimLeft(unsafeName().ReplaceAllString(jobID, "_"), ".")
	if len(name) > 64 {
		name = name[:64]
	}
	if name == "" {
		name = "job"
	}
	path, err := mkdirRandom(jobs, name+"-")
	if err != nil {
		return nil, fmt.Errorf("creating the job dir: %w", err)
	}
	lock, err := lockDir(path) // new, and nobody else's: had at once
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return &JobDir{Path: path, lock: lock}, nil
}

// jobsMode is STATE/jobs': the agent user may enter it and make dirs in it,
// but not list it, so a job finds no other job's dir by looking (which is
// no wall against a job of the same user that sets out to: see
// docs/credentials.md).
const jobsMode = 0o300

// mkdirRandom makes dir/prefix<128 random bits in hex>, 0700: a name no
// other job can guess.
func mkdirRandom(dir, prefix string) (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		path := filepath.Join(dir, prefix+hex.EncodeToString(b[:]))
		err := os.Mkdir(path, 0o700)
		if !errors.Is(err, os.ErrExist) {
			return path, err
		}
	}
}

// Remove deletes the job dir, then releases its lock.
func (j *JobDir) Remove() error {
	if j == nil || j.lock == nil {
		return nil
	}
	err := removeAll(j.Path)
	j.lock.Close()
	j.lock = nil
	return err
}

// Sweep removes the job dirs under state whose job is gone, and returns them.
// Waiting for the host's other jobs is bounded, and ends with ctx.
func Sweep(ctx context.Context, state string) ([]string, error) {
	jobs := filepath.Join(state, "jobs")
	if _, err := os.Lstat(jobs); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	release, err := filelock.Lock(ctx, filepath.Join(jobs, ".lock"), 0)
	if err != nil {
		return nil, err
	}
	defer release()
	// Listable only for this moment, under the lock.
	if err := os.Chmod(jobs, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", jobs, err)
	}
	entries, err := os.ReadDir(jobs)
	if cerr := os.Chmod(jobs, jobsMode); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", jobs, err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		// Every dir here is a job's, whatever its name; .lock is a file.
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(jobs, e.Name())
		lock, err := lockDir(path)
		if err != nil {
			continue // alive, or already gone
		}
		err = removeAll(path)
		lock.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, path)
	}
	return removed, errors.Join(errs...)
}

// lockDir takes an exclusive flock on a directory, failing at once when
// another process holds it.
func lockDir(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

// removeAll removes a job dir, making read-only dirs in it writable first so
// a job that chmod'ed something cannot leave it behind.
func removeAll(path string) error {
	if err := removeJobTree(path); err == nil {
		return nil
	}
	_ = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := removeJobTree(path); err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// removeJobTree is os.RemoveAll for a dir in STATE/jobs, which its owner may
// not read (jobsMode): os.RemoveAll opens a path's parent to remove it from
// there, which only root could. This reads only the job dir itself, and
// removes it from STATE/jobs by name (rmdir needs only write and search).
func removeJobTree(path string) error {
	entries, err := os.ReadDir(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
