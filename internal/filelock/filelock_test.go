package filelock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLockExcludesAndTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := Lock(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open file descriptions: a second open in this
	// process contends like another process would.
	if _, err := Lock(t.Context(), path, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second Lock while held = %v, want ErrTimeout", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := Lock(t.Context(), path, time.Minute)
		if err == nil {
			r()
		}
		got <- err
	}()
	release()
	if err := <-got; err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
}

func TestLockMissingDir(t *testing.T) {
	if _, err := Lock(t.Context(), filepath.Join(t.TempDir(), "no", "x.lock"), 0); err == nil {
		t.Fatal("Lock in a missing dir succeeded")
	}
}

// Every wait is bounded (0 is DefaultWait, not forever), ends when its
// context does, and names the holder's pid.
func TestDefect04_BoundedLockWaitNamesHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := Lock(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	start := time.Now()
	_, err = Lock(t.Context(), path, 200*time.Millisecond)
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Lock while held = %v, want a *WaitError with ErrTimeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a 200ms wait took %s", took)
	}
	if pid := "pid " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), pid) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the lock and the holder (%s)", err, pid)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Lock(ctx, path, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context = %v, want context.Canceled", err)
	}
	if DefaultWait <= 0 || DefaultWait > time.Minute {
		t.Errorf("DefaultWait = %s", DefaultWait)
	}
}
