package filelock

import (
	"path/filepath"
	"testing"
	"time"
)

func TestTryLockNeverWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	release, err := Lock(t.Context(), path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok, err := TryLock(path); ok || err != nil {
		if r != nil {
			r()
		}
		t.Fatalf("TryLock while held = %v, %v; want not ok, no error", ok, err)
	}
	release()
	r, ok, err := TryLock(path)
	if !ok || err != nil {
		t.Fatalf("TryLock when free = %v, %v", ok, err)
	}
	if _, err := Lock(t.Context(), path, 20*time.Millisecond); err == nil {
		t.Fatal("Lock succeeded while TryLock held the lock")
	}
	r()
}
