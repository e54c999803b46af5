package jsonfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
)

type doc struct {
	Version int               `json:"version"`
	Items   map[string]string `json:"items"`
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name, content string // content "" is no file
		want          doc
		err           string
	}{
		{name: "missing"},
		{name: "good", content: `{"version":1,"items":{"a":"b"}}`, want: doc{1, map[string]string{"a": "b"}}},
		// A file that is not JSON, or half of one that decodes, is the zero
		// value: no field the decoder filled before failing leaks out.
		{name: "corrupt", content: "{not json", err: "invalid character"},
		{name: "half", content: `{"version":1,"items":{"a":`, err: "unexpected end of JSON input"},
		{name: "wrong shape", content: `{"version":"one"}`, err: "cannot unmarshal string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.json")
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Read[doc](path)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path)) {
				t.Fatalf("Read = %v, want an error with %q and the path", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Read = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadUnreadableIsAnError(t *testing.T) {
	dir := t.TempDir() // a directory cannot be read as a file, even by root
	if _, err := Read[doc](dir); err == nil {
		t.Fatal("Read of a directory succeeded")
	}
}

func TestWriteIsPrivateAndReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := doc{1, map[string]string{"k": "v"}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat = %v, %v; want mode 0600", fi, err)
	}
	got, err := Read[doc](path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Read after Write = %+v, %v; want %+v", got, err, want)
	}
	if err := Write(path, func() {}); err == nil {
		t.Error("Write of a value JSON cannot hold succeeded")
	}
}

func TestLockMakesItsDirAndExcludes(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "new", "f.lock")
	release, err := Lock(t.Context(), lock, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(lock))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("lock dir: %v, %v; want a 0700 dir", fi, err)
	}
	// flock locks belong to open file descriptions: a second Lock in this
	// process contends as another process would.
	if _, err := LockUntil(t.Context(), lock, time.Now().Add(50*time.Millisecond)); !errors.Is(err, filelock.ErrTimeout) {
		t.Fatalf("LockUntil while held = %v, want ErrTimeout", err)
	}
	release()
	// A deadline already past still takes a free lock.
	again, err := LockUntil(t.Context(), lock, time.Now().Add(-time.Second))
	if err != nil {
		t.Fatalf("LockUntil a past deadline on a free lock: %v", err)
	}
	again()
}

func TestLockCannotMakeItsDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(t.Context(), filepath.Join(file, "f.lock"), 0); err == nil {
		t.Fatal("Lock under a file succeeded")
	}
}
