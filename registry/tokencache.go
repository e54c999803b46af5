package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/internal/jsonfile"
)

// The ECR token cache is shared by every job and agent of the host (one
// state dir per agent user):
//
//	STATE/tokens/             0700
//	STATE/tokens/ecr.json     0600, replaced atomically; read without a lock
//	STATE/tokens/ecr.json.lock   held while ecr.json is rewritten
//	STATE/tokens/fetch-<h>.lock  held by the one process fetching a token for
//	                             registry <h> (a hash of its cache key); the
//	                             others wait, then find the token it cached.
//	                             One file per registry, whatever the identity,
//	                             so their number stays bounded.
//
// ecr.json:
//
//	{"version": 1,
//	 "identities": {HINT: KEY_ID},            // last identity seen per hint
//	 "tokens": {HINT "/" REGISTRY_KEY: {username, secret, proxy_endpoint,
//	            requested_at, expires_at, key_id, host, used_at}}}
//
// HINT is IdentityHint, KEY_ID the SHA-256 of the access key id the token was
// obtained with (see identity.go), REGISTRY_KEY hosts.Registry.CacheKey.

// TokenCacheDirName is the cache's directory under the state dir.
const TokenCacheDirName = "tokens"

const tokenCacheVersion = 1

// writeLockWait bounds waiting to rewrite ecr.json: a writer holds the lock
// for a read and a rename, so a longer wait is a stuck one.
const writeLockWait = 5 * time.Second

// validMargin is how long before its expiry a token stops being served even
// as a fallback: docker needs it for the requests that follow.
const validMargin = time.Minute

// Token is one cached registry token.
type Token struct {
	Username      string    `json:"username"`
	Secret        string    `json:"secret"`
	ProxyEndpoint string    `json:"proxy_endpoint,omitempty"`
	RequestedAt   time.Time `json:"requested_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	KeyID         string    `json:"key_id"`
	// Host is the registry host the token was fetched for, and UsedAt
	// when a get last used it (at most UsedStampEvery old): what the
	// bootstrap's background refresh goes by (tokenrefresh.go).
	Host   string    `json:"host,omitempty"`
	UsedAt time.Time `json:"used_at,omitzero"`
}

// Fresh reports whether t is in the first half of its lifetime: it is served
// without asking the API. Later it is refreshed, long before it expires.
func (t Token) Fresh(now time.Time) bool {
	life := t.ExpiresAt.Sub(t.RequestedAt)
	return life > 0 && now.Before(t.ExpiresAt.Add(-life/2)) && t.Valid(now)
}

// Valid reports whether t may still be served when a refresh failed.
func (t Token) Valid(now time.Time) bool {
	return t.Secret != "" && now.Before(t.ExpiresAt.Add(-validMargin))
}

type tokenFile struct {
	Version    int               `json:"version"`
	Identities map[string]string `json:"identities"`
	Tokens     map[string]Token  `json:"tokens"`
}

// TokenCache is the host's shared cache of ECR tokens in Dir.
type TokenCache struct {
	Dir string
}

func (c *TokenCache) file() string { return filepath.Join(c.Dir, "ecr.json") }

func entryKey(hint, registryKey string) string { return hint + "/" + registryKey }

// Get returns the token cached for registryKey under hint, if the identity
// that obtained it is still the one last seen for hint.
func (c *TokenCache) Get(hint, registryKey string) (Token, bool, error) {
	f, err := c.load()
	if err != nil {
		return Token{}, false, err
	}
	t, ok := f.Tokens[entryKey(hint, registryKey)]
	if !ok || t.KeyID == "" || t.KeyID != f.Identities[hint] {
		return Token{}, false, nil
	}
	return t, true, nil
}

// Put caches t, obtained under hint for registryKey. If the identity that
// obtained it differs from the one last seen for hint, every token cached
// under hint is dropped first; dropped counts them. Expired tokens of any
// hint are removed on the way.
func (c *TokenCache) Put(ctx context.Context, hint, registryKey string, t Token, now time.Time) (dropped int, err error) {
	unlock, err := jsonfile.Lock(ctx, c.file()+".lock", writeLockWait)
	if err != nil {
		return 0, err
	}
	defer unlock()
	f, err := c.load()
	if err != nil {
		f = emptyTokenFile() // a broken cache is replaced, not fatal
	}
	if prev, ok := f.Identities[hint]; ok && prev != t.KeyID {
		for k := range f.Tokens {
			if strings.HasPrefix(k, hint+"/") {
				delete(f.Tokens, k)
				dropped++
			}
		}
	}
	for k, old := range f.Tokens {
		if !now.Before(old.ExpiresAt) {
			delete(f.Tokens, k)
		}
	}
	f.Identities[hint] = t.KeyID
	f.Tokens[entryKey(hint, registryKey)] = t
	// Forget the hints (rotated access keys) that have no token left.
	live := map[string]bool{}
	for k := range f.Tokens {
		hint, _, _ := strings.Cut(k, "/")
		live[hint] = true
	}
	for h := range f.Identities {
		if !live[h] {
			delete(f.Identities, h)
		}
	}
	return dropped, jsonfile.Write(c.file(), f)
}

// LockFetch takes the lock that makes one process fetch registryKey's token
// while the others wait for it, at most wait and no longer than ctx lasts.
func (c *TokenCache) LockFetch(ctx context.Context, registryKey string, wait time.Duration) (unlock func(), err error) {
	return jsonfile.Lock(ctx, c.fetchLockPath(registryKey), wait)
}

func (c *TokenCache) fetchLockPath(registryKey string) string {
	sum := sha256.Sum256([]byte(registryKey))
	return filepath.Join(c.Dir, "fetch-"+hex.EncodeToString(sum[:8])+".lock")
}

func emptyTokenFile() tokenFile {
	return tokenFile{Version: tokenCacheVersion, Identities: map[string]string{}, Tokens: map[string]Token{}}
}

func (c *TokenCache) load() (tokenFile, error) {
	f, err := jsonfile.Read[tokenFile](c.file())
	if err != nil {
		return tokenFile{}, fmt.Errorf("reading the token cache: %w", err)
	}
	if f.Version != tokenCacheVersion { // missing, or another version's
		return emptyTokenFile(), nil
	}
	if f.Identities == nil {
		f.Identities = map[string]string{}
	}
	if f.Tokens == nil {
		f.Tokens = map[string]Token{}
	}
	// Any job of the host can write this file: an entry that is not
	// HINT "/" REGISTRY_KEY is not one dockhand wrote, and is dropped.
	for k := range f.Tokens {
		if hint, reg, ok := strings.Cut(k, "/"); !ok || hint == "" || reg == "" {
			delete(f.Tokens, k)
		}
	}
	return f, nil
}
