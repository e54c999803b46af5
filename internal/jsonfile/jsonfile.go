// Package jsonfile keeps the small JSON files a host's processes share
// (caches of tokens, probes and fleet memberships, a job's logins): a lock
// beside the file serialises its writers, a reader sees the whole old file
// or the whole new one, and the file is never more readable than 0600.
//
// The usual update is Lock, Read, change, Write, release. What a missing,
// unreadable or foreign file means is each caller's decision: Read tells
// them apart and never returns a half-decoded value.
package jsonfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// Lock takes the flock(2) lock file lockPath, creating its directory (0700)
// when it is missing; it waits at most wait (filelock.DefaultWait when 0)
// and no longer than ctx lasts. The returned func releases it.
func Lock(ctx context.Context, lockPath string, wait time.Duration) (release func(), err error) {
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", filepath.Dir(lockPath), err)
	}
	return filelock.Lock(ctx, lockPath, wait)
}

// LockUntil is Lock waiting until deadline at most: a holder that works
// within the same deadline is waited for, its answer being worth the wait.
// A deadline already past still tries once.
func LockUntil(ctx context.Context, lockPath string, deadline time.Time) (release func(), err error) {
	return Lock(ctx, lockPath, max(time.Until(deadline), time.Millisecond))
}

// Read decodes the JSON file at path into a new T. A missing file is the
// zero T and no error; a file that cannot be read or decoded is the zero T
// and an error naming path.
func Read[T any](path string) (T, error) {
	var zero, v T
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return zero, nil
	}
	if err != nil {
		return zero, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// Write replaces path with v as indented JSON, mode 0600, atomically
// (internal/safefile).
func Write(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return safefile.Write(path, data)
}
