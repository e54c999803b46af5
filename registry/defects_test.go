package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/internal/joblog"
)

// Regression tests for the defects of issue 12 that live in the credential
// helper, each named for its number there.

// A planted cache entry whose key has no "/" must neither panic a get nor
// stop the cache working: it is dropped as the malformed entry it is.
func TestDefect03_TokenCacheKeyWithoutSlash(t *testing.T) {
	r := newECRRig(t)
	dir := filepath.Join(r.state, TokenCacheDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	planted := tokenFile{
		Version:    tokenCacheVersion,
		Identities: map[string]string{"noslash": "k"},
		Tokens: map[string]Token{"noslash": {
			Username: "AWS", Secret: "planted", RequestedAt: r.clock.Now(), ExpiresAt: r.clock.Now().Add(time.Hour), KeyID: "k",
		}},
	}
	data, _ := json.Marshal(planted)
	if err := os.WriteFile(filepath.Join(dir, "ecr.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	_, secret, err := r.helper(&stderr).Get(ecrHost)
	if err != nil || secret != "token-1@us-east-1" {
		t.Fatalf("get with a planted key = %q, %v (stderr %q)", secret, err, stderr.String())
	}
	// Cached now: the next get is served without asking the API again.
	if _, secret, err := r.helper(&stderr).Get(ecrHost); err != nil || secret != "token-1@us-east-1" || r.fetch.calls.Load() != 1 {
		t.Fatalf("second get = %q, %v after %d calls", secret, err, r.fetch.calls.Load())
	}
	after, _ := os.ReadFile(filepath.Join(dir, "ecr.json"))
	if bytes.Contains(after, []byte(`"noslash"`)) {
		t.Errorf("the malformed entry survived a rewrite: %s", after)
	}
}

// `store` with an empty Secret is refused, and an empty login already in the
// job's store (planted, or from an older dockhand) is passed over: neither
// may shadow the static (or ECR) source with nothing.
func TestDefect11_StoreRefusesEmptySecret(t *testing.T) {
	root := t.TempDir()
	jobDir := filepath.Join(root, "job")
	os.MkdirAll(jobDir, 0o700)
	static := filepath.Join(root, "static.json")
	os.WriteFile(static, []byte(`{"username":"su","password":"sp"}`), 0o600)
	var stderr bytes.Buffer
	h := New(Options{JobDir: jobDir, StateDir: filepath.Join(root, "state"), Log: joblog.New(&stderr),
		Settings: Settings{Static: map[string]string{"static.example": static}}})
	if _, err := serve(t, h, "store", `{"ServerURL":"static.example","Username":"u","Secret":""}`); err == nil {
		t.Errorf("store with an empty Secret was accepted")
	}
	if u, s, err := h.Get("static.example"); err != nil || u != "su" || s != "sp" {
		t.Errorf("get after an empty store = %q %q %v, want the static credentials", u, s, err)
	}
	planted, _ := json.Marshal(map[string]Login{"static.example": {ServerURL: "static.example", Username: "u"}})
	os.WriteFile(filepath.Join(jobDir, StoreFile), planted, 0o600)
	if u, s, err := h.Get("static.example"); err != nil || u != "su" || s != "sp" {
		t.Errorf("get with an empty login in the store = %q %q %v, want the static credentials", u, s, err)
	}
}

// holdLock holds an flock on path for the rest of the test, as a stuck
// process would (another open file description contends like one).
func holdLock(t *testing.T, path string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}

// within runs fn and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s still waiting after %s", what, d)
	}
}

// With the token cache's or the job store's lock held by a stuck process,
// get and store give up within their bounds (get: Timeout, as the docs
// say), get still serves the token it fetched, and store's error names the
// lock's holder.
func TestDefect04_HelperLockWaitsBounded(t *testing.T) {
	r := newECRRig(t)
	jobDir := t.TempDir()
	holdLock(t, filepath.Join(r.state, TokenCacheDirName, "ecr.json.lock"))
	holdLock(t, filepath.Join(jobDir, StoreFile+".lock"))
	var stderr bytes.Buffer
	h := New(Options{
		StateDir: r.state, JobDir: jobDir, Env: r.env, UID: 1000, Log: joblog.New(&stderr), Now: r.clock.Now, FetchECR: r.fetch.fetch,
		FileStamp: func(string) (int64, time.Time, bool) { return 0, time.Time{}, false },
		LockWait:  time.Second, Timeout: 2 * time.Second,
	})
	within(t, 10*time.Second, "get", func() {
		if _, secret, err := h.Get(ecrHost); err != nil || secret != "token-1@us-east-1" {
			t.Errorf("get with the cache locked = %q, %v", secret, err)
		}
	})
	if !strings.Contains(stderr.String(), "could not cache the ECR token") {
		t.Errorf("stderr = %q, want a line about the cache", stderr.String())
	}
	within(t, 10*time.Second, "store", func() {
		_, err := serve(t, h, "store", `{"ServerURL":"r.example","Username":"u","Secret":"p"}`)
		if err == nil || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
			t.Errorf("store with the store locked = %v, want an error naming pid %d", err, os.Getpid())
		}
	})
}
