package filelock

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludesAndTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := Lock(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open file descriptions: a second open in this
	// process contends like another process would.
	if _, err := Lock(path, 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("second Lock while held = %v, want ErrTimeout", err)
	}
	got := make(chan error, 1)
	go func() {
		r, err := Lock(path, 0)
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
	if _, err := Lock(filepath.Join(t.TempDir(), "no", "x.lock"), 0); err == nil {
		t.Fatal("Lock in a missing dir succeeded")
	}
}
