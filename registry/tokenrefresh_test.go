package registry

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

func TestDueForRefresh(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	const hint, other = "hint-host", "hint-pipeline"
	keyID := KeyID("AKIAHOST")
	// tok is a 12 h token fetched age ago, last used usedAgo ago (-1: never recorded).
	tok := func(age, usedAgo time.Duration) Token {
		t := Token{Username: "AWS", Secret: "s", RequestedAt: now.Add(-age), ExpiresAt: now.Add(12*time.Hour - age), KeyID: keyID}
		if usedAgo >= 0 {
			t.UsedAt = now.Add(-usedAgo)
		}
		return t
	}
	const key = "ecr/123456789012/us-east-1"
	for _, tc := range []struct {
		name  string
		entry string // the cache key, HINT/REGISTRY
		token Token
		ids   map[string]string
		due   bool
	}{
		{"fresh for more than the window", hint + "/" + key, tok(4*time.Hour, time.Minute), nil, false},
		{"stops being fresh within the window", hint + "/" + key, tok(5*time.Hour+30*time.Minute, time.Minute), nil, true},
		{"past half its life, still valid", hint + "/" + key, tok(11*time.Hour, time.Minute), nil, true},
		{"expired but used recently", hint + "/" + key, tok(13*time.Hour, 10*time.Hour), nil, true},
		{"not used for a day", hint + "/" + key, tok(11*time.Hour, 25*time.Hour), nil, false},
		{"no use recorded, fetched within a day", hint + "/" + key, tok(11*time.Hour, -1), nil, true},
		{"no use recorded, fetched over a day ago", hint + "/" + key, tok(30*time.Hour, -1), nil, false},
		{"another identity's token", other + "/" + key, tok(11*time.Hour, time.Minute), nil, false},
		{"the hint's identity changed", hint + "/" + key, tok(11*time.Hour, time.Minute), map[string]string{hint: KeyID("AKIANEW")}, false},
		{"ECR Public", hint + "/ecr-public", tok(11*time.Hour, time.Minute), nil, true},
		{"a key dockhand never writes", hint + "/ecr/not-an-account", tok(11*time.Hour, time.Minute), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := emptyTokenFile()
			f.Identities[hint], f.Identities[other] = keyID, keyID
			for h, id := range tc.ids {
				f.Identities[h] = id
			}
			f.Tokens[tc.entry] = tc.token
			got := dueForRefresh(f, hint, now)
			if due := len(got) == 1; due != tc.due || len(got) > 1 {
				t.Errorf("due = %q, want due %v", got, tc.due)
			}
		})
	}
}

func TestRefreshRegistryKeepsTheHostAsked(t *testing.T) {
	for _, tc := range []struct{ key, host, want string }{
		{"ecr/123456789012/us-east-1", "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"},
		{"ecr/123456789012/us-east-1", "", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"ecr/123456789012/us-east-1", "210987654321.dkr.ecr.us-east-1.amazonaws.com", "123456789012.dkr.ecr.us-east-1.amazonaws.com"},
		{"ecr/123456789012/cn-north-1", "", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"},
		{"ecr-public", "", "public.ecr.aws"},
	} {
		r, ok := refreshRegistry(tc.key, Token{Host: tc.host})
		if !ok || r.Host != tc.want {
			t.Errorf("refreshRegistry(%q, host %q) = %q, %v; want %q", tc.key, tc.host, r.Host, ok, tc.want)
		}
	}
}

// refreshOptions is a refresh in the rig's state dir with env as the
// bootstrap's environment.
func (r *ecrRig) refreshOptions(env *agentenv.Environment) RefreshOptions {
	return RefreshOptions{StateDir: r.state, Env: env, UID: 1000, Now: r.clock.Now, FetchECR: r.fetch.fetch,
		FileStamp: func(string) (int64, time.Time, bool) { return 0, time.Time{}, false }}
}

// A due token is refreshed by the bootstrap; the next get is served from
// the cache with no fetch of its own; the use record survives the refresh.
func TestRefreshMakesTheNextGetWarm(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	if _, _, err := r.helper(&stderr).Get(ecrHost); err != nil || r.fetch.calls.Load() != 1 {
		t.Fatalf("first get: %v, %d calls", err, r.fetch.calls.Load())
	}
	firstUse := r.clock.Now()

	// Nothing due while the token is young.
	claim, err := ClaimRefresh(r.refreshOptions(r.env))
	if err != nil || len(claim.Registries()) != 0 {
		t.Fatalf("young token: claimed %q, %v", claim.Registries(), err)
	}
	r.clock.Add(5*time.Hour + 30*time.Minute)
	r.fetch.set("token-2", KeyID("AKIAONE"), nil)
	claim, err = ClaimRefresh(r.refreshOptions(r.env))
	if err != nil || !slices.Equal(claim.Registries(), []string{ecrHost}) {
		t.Fatalf("claimed %q, %v; want %s", claim.Registries(), err, ecrHost)
	}
	// A second bootstrap at the same moment finds the lock held: it leaves
	// the registry to the first.
	if c2, err := ClaimRefresh(r.refreshOptions(r.env)); err != nil || len(c2.Registries()) != 0 {
		t.Fatalf("concurrent claim: %q, %v", c2.Registries(), err)
	}
	if n, err := claim.Run(t.Context()); n != 1 || err != nil {
		t.Fatalf("Run = %d, %v", n, err)
	}
	if r.fetch.calls.Load() != 2 {
		t.Fatalf("calls after the refresh = %d, want 2", r.fetch.calls.Load())
	}
	tok, ok, _ := (&TokenCache{Dir: r.state + "/" + TokenCacheDirName}).Get(IdentityHint(r.env, 1000, func(string) (int64, time.Time, bool) { return 0, time.Time{}, false }), "ecr/123456789012/us-east-1")
	if !ok || !tok.UsedAt.Equal(firstUse) || tok.Host != ecrHost {
		t.Errorf("refreshed entry: used %s (want %s, the get's), host %q", tok.UsedAt, firstUse, tok.Host)
	}
	c, _, err := r.helper(&stderr).Lookup(t.Context(), ecrHost)
	if err != nil || c.Secret != "token-2@us-east-1" || c.Detail != "cached token" || r.fetch.calls.Load() != 2 {
		t.Fatalf("get after the refresh = %+v, %v, %d calls; want the refreshed token from the cache", c, err, r.fetch.calls.Load())
	}
}

// A get that comes while the refresh runs waits for it on the fetch lock
// and is served its token: one API call, not two.
func TestGetDuringRefreshWaitsForIt(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	r.helper(&stderr).Get(ecrHost)
	r.clock.Add(7 * time.Hour)
	r.fetch.set("token-2", KeyID("AKIAONE"), nil)
	opts := r.refreshOptions(r.env)
	// The refresh's fetch goes on only once the get is seen waiting for
	// the fetch lock (a blocked flock in /proc/locks), or has fetched
	// itself (a lock that does not exclude: 3 calls, which fails below).
	lockDir := filepath.Join(r.state, TokenCacheDirName)
	opts.FetchECR = func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error) {
		deadline := time.Now().Add(10 * time.Second)
		for !flockWaiterIn(t, lockDir) && r.fetch.calls.Load() < 2 {
			if time.Now().After(deadline) {
				t.Error("the get never waited for the refresh's fetch lock")
				break
			}
			runtime.Gosched()
		}
		return r.fetch.fetch(ctx, reg)
	}
	claim, err := ClaimRefresh(opts)
	if err != nil || len(claim.Registries()) != 1 {
		t.Fatalf("claimed %q, %v", claim.Registries(), err)
	}
	got := make(chan string, 1)
	go func() {
		_, s, _ := r.helper(&stderr).Get(ecrHost)
		got <- s
	}()
	claim.Run(t.Context())
	if s := <-got; s != "token-2@us-east-1" || r.fetch.calls.Load() != 2 {
		t.Errorf("the waiting get = %q after %d calls; want the refreshed token, 2 calls", s, r.fetch.calls.Load())
	}
}

// A pipeline that sets its own AWS variables has another identity hint:
// its bootstrap neither claims nor fetches the host identity's tokens.
func TestRefreshNeverCrossesIdentities(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	r.helper(&stderr).Get(ecrHost)
	r.clock.Add(7 * time.Hour)
	pipeline := r.env.Copy()
	pipeline.Set("AWS_ACCESS_KEY_ID", "AKIAPIPELINE")
	claim, err := ClaimRefresh(r.refreshOptions(pipeline))
	if err != nil || len(claim.Registries()) != 0 {
		t.Fatalf("a pipeline's own identity claimed %q, %v", claim.Registries(), err)
	}
	pipeline = r.env.Copy()
	pipeline.Set("AWS_PROFILE", "pipeline")
	if claim, _ = ClaimRefresh(r.refreshOptions(pipeline)); len(claim.Registries()) != 0 {
		t.Fatalf("a pipeline's own profile claimed %q", claim.Registries())
	}
	if r.fetch.calls.Load() != 1 {
		t.Errorf("calls = %d, want only the first get's", r.fetch.calls.Load())
	}
}

// A failed refresh leaves the old token and releases the lock: the get
// fetches itself, and falls back to the old token if that fails too.
func TestFailedRefreshLeavesTheCache(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	r.helper(&stderr).Get(ecrHost)
	r.clock.Add(7 * time.Hour)
	r.fetch.set("", "", errors.New("AccessDeniedException"))
	claim, _ := ClaimRefresh(r.refreshOptions(r.env))
	if n, err := claim.Run(t.Context()); n != 0 || err == nil {
		t.Fatalf("Run with a failing API = %d, %v", n, err)
	}
	r.fetch.set("token-2", KeyID("AKIAONE"), nil)
	if _, s, err := r.helper(&stderr).Get(ecrHost); err != nil || s != "token-2@us-east-1" || r.fetch.calls.Load() != 3 {
		t.Errorf("get after a failed refresh = %q, %v, %d calls", s, err, r.fetch.calls.Load())
	}
}

// A get served from the cache records its use at most once an hour.
func TestGetRecordsUseHourly(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	r.helper(&stderr).Get(ecrHost)
	cache := &TokenCache{Dir: r.state + "/" + TokenCacheDirName}
	hint := IdentityHint(r.env, 1000, func(string) (int64, time.Time, bool) { return 0, time.Time{}, false })
	used := func() time.Time {
		tok, _, _ := cache.Get(hint, "ecr/123456789012/us-east-1")
		return tok.UsedAt
	}
	first := used()
	r.clock.Add(30 * time.Minute)
	r.helper(&stderr).Get(ecrHost)
	if !used().Equal(first) {
		t.Errorf("a get within the hour rewrote the use record: %s, want %s", used(), first)
	}
	r.clock.Add(31 * time.Minute)
	r.helper(&stderr).Get(ecrHost)
	if !used().Equal(r.clock.Now()) {
		t.Errorf("use record = %s, want %s", used(), r.clock.Now())
	}
}

// flockWaiterIn reports whether a process waits (a "->" line of
// /proc/locks) for a flock on one of dir's fetch-*.lock files.
func flockWaiterIn(t *testing.T, dir string) bool {
	t.Helper()
	inodes := map[string]bool{}
	locks, _ := filepath.Glob(filepath.Join(dir, "fetch-*.lock"))
	for _, l := range locks {
		var st syscall.Stat_t
		if syscall.Stat(l, &st) == nil {
			inodes[strconv.FormatUint(st.Ino, 10)] = true
		}
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Fatalf("reading /proc/locks: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 || f[1] != "->" || f[2] != "FLOCK" {
			continue
		}
		dev := strings.Split(f[6], ":")
		if inodes[dev[len(dev)-1]] {
			return true
		}
	}
	return false
}
