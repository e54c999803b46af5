package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	h := New(Options{JobDir: jobDir, StateDir: filepath.Join(root, "state"), Stderr: &stderr,
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
