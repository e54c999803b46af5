package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/safedir"
)

// stuckAfter is how long doctor lets a lock stay held before it calls the
// holder stuck: dockhand's processes hold theirs for milliseconds, a start
// of the embedded buildkitd for seconds.
const stuckAfter = 2 * time.Second

// CheckStateDir is doctor's look at a state dir, changing nothing: one
// problem per line (none: nothing wrong). A dir that does not exist yet is
// fine (the first job makes it). It checks what jobs check before they use
// the dir (safedir.Check: owned by uid, writable by no one else, nor any dir
// above it), the room left on its disk, and every lock of the host's shared
// state held for more than stuckAfter, naming the holders.
func CheckStateDir(ctx context.Context, dir string, uid int) []string {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var problems []string
	real, err := safedir.Check(dir, uid, false)
	if err != nil {
		return []string{fmt.Sprintf("jobs will not use it: %v", err)}
	}
	if err := hasRoom(real); err != nil {
		problems = append(problems, fmt.Sprintf("jobs will not use it: %v", err))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, lock := range stateLocks(real) {
		wg.Go(func() {
			err := filelock.Busy(ctx, lock, stuckAfter)
			var we *filelock.WaitError
			if errors.As(err, &we) {
				mu.Lock()
				problems = append(problems, "stuck lock: "+err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return problems
}

// stateLocks lists the lock files of the host's shared state under dir:
// jobs/.lock, tokens/*.lock, builders/probes.lock, buildkitd/lock (a job
// dir's own lock is its running job's, and deeper down).
func stateLocks(dir string) []string {
	var locks []string
	for _, pattern := range []string{"*/*.lock", "*/lock"} {
		found, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range found {
			if fi, err := os.Lstat(f); err == nil && fi.Mode().IsRegular() {
				locks = append(locks, f)
			}
		}
	}
	return locks
}
