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
