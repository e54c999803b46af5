package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

const ecrHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fetcher is an in-process stand-in for `dockhand-cloud ecr-token`: it
// counts calls and answers from its fields.
type fetcher struct {
	calls  atomic.Int32
	mu     sync.Mutex
	secret string
	keyID  string
	ttl    time.Duration
	err    error
	clock  *clock
}

func (f *fetcher) fetch(_ context.Context, reg hosts.Registry) (ECRTokenReply, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return ECRTokenReply{}, f.err
	}
	return ECRTokenReply{Username: "AWS", Secret: f.secret + "@" + reg.Region, ExpiresAt: f.clock.Now().Add(f.ttl), KeyID: f.keyID}, nil
}

func (f *fetcher) set(secret, keyID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secret, f.keyID, f.err = secret, keyID, err
}

type ecrRig struct {
	state string
	clock *clock
	fetch *fetcher
	env   *agentenv.Environment
}

func newECRRig(t *testing.T) *ecrRig {
	c := &clock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	return &ecrRig{
		state: t.TempDir(), clock: c,
		fetch: &fetcher{secret: "token-1", keyID: KeyID("AKIAONE"), ttl: 12 * time.Hour, clock: c},
		env:   agentenv.FromMap(map[string]string{"HOME": "/home/agent", "AWS_ACCESS_KEY_ID": "AKIAONE"}),
	}
}

func (r *ecrRig) helper(stderr *bytes.Buffer) *Helper {
	return New(Options{
		StateDir: r.state, Env: r.env, UID: 1000, Log: joblog.New(stderr), Now: r.clock.Now, FetchECR: r.fetch.fetch,
		FileStamp: func(string) (int64, time.Time, bool) { return 0, time.Time{}, false },
	})
}

func TestECRTokenCachedRefreshedAndFallenBackOn(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	get := func() (string, error) {
		_, secret, err := r.helper(&stderr).Get(ecrHost)
		return secret, err
	}
	if s, err := get(); err != nil || s != "token-1@us-east-1" || r.fetch.calls.Load() != 1 {
		t.Fatalf("first get = %q, %v after %d calls", s, err, r.fetch.calls.Load())
	}
	r.clock.Add(5 * time.Hour) // under half its life: served from the cache
	r.fetch.set("token-2", KeyID("AKIAONE"), nil)
	if s, err := get(); err != nil || s != "token-1@us-east-1" || r.fetch.calls.Load() != 1 {
		t.Fatalf("cached get = %q, %v after %d calls", s, err, r.fetch.calls.Load())
	}
	r.clock.Add(2 * time.Hour) // past half its life: refreshed before it expires
	if s, err := get(); err != nil || s != "token-2@us-east-1" || r.fetch.calls.Load() != 2 {
		t.Fatalf("refreshed get = %q, %v after %d calls", s, err, r.fetch.calls.Load())
	}
	// The API fails: the still valid cached token is served, with one line.
	r.clock.Add(11 * time.Hour)
	r.fetch.set("", "", errors.New("operation error ECR: GetAuthorizationToken, ThrottlingException: Rate exceeded"))
	stderr.Reset()
	if s, err := get(); err != nil || s != "token-2@us-east-1" {
		t.Fatalf("get with a failing API = %q, %v", s, err)
	}
	if lines := strings.Count(stderr.String(), "\n"); lines != 1 || !strings.Contains(stderr.String(), "using the cached one") {
		t.Errorf("stderr = %q, want one line about the cached token", stderr.String())
	}
	// Expired and the API still fails: not found and one line, no secret.
	r.clock.Add(time.Hour)
	stderr.Reset()
	if _, err := get(); err == nil || err.Error() != "credentials not found in native keychain" {
		t.Fatalf("get with an expired token and a failing API = %v", err)
	}
	if lines := strings.Count(stderr.String(), "\n"); lines != 1 || !strings.Contains(stderr.String(), "ThrottlingException") {
		t.Errorf("stderr = %q, want one line naming the failure", stderr.String())
	}
	if strings.Contains(stderr.String(), "token-") {
		t.Errorf("stderr holds a token: %q", stderr.String())
	}
	fi, err := os.Stat(filepath.Join(r.state, TokenCacheDirName, "ecr.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file: %v, mode %v", err, fi.Mode())
	}
	di, err := os.Stat(filepath.Join(r.state, TokenCacheDirName))
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("cache dir: %v, mode %v", err, di.Mode())
	}
}

func TestECRTokensArePerRegistryAndPerIdentity(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	h := r.helper(&stderr)
	for _, host := range []string{ecrHost, "123456789012.dkr-ecr.us-east-1.on.aws", "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com"} {
		if _, _, err := h.Get(host); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.fetch.calls.Load(); n != 1 {
		t.Errorf("one registry under three hostnames made %d calls, want 1", n)
	}
	if _, s, _ := h.Get("123456789012.dkr.ecr.eu-west-1.amazonaws.com"); s != "token-1@eu-west-1" || r.fetch.calls.Load() != 2 {
		t.Errorf("another region: %q after %d calls", s, r.fetch.calls.Load())
	}
	// Another identity (another access key in the environment) never gets
	// the first one's token.
	r.env = agentenv.FromMap(map[string]string{"HOME": "/home/agent", "AWS_ACCESS_KEY_ID": "AKIATWO"})
	r.fetch.set("token-of-two", KeyID("AKIATWO"), nil)
	if _, s, _ := r.helper(&stderr).Get(ecrHost); s != "token-of-two@us-east-1" || r.fetch.calls.Load() != 3 {
		t.Errorf("second identity got %q after %d calls", s, r.fetch.calls.Load())
	}
}

// TestIdentityChangeUnderTheSameHint: the hint cannot see every change (an
// instance role swapped); the key id the fetch reports can. A different
// one drops every token of the hint.
func TestIdentityChangeUnderTheSameHint(t *testing.T) {
	r := newECRRig(t)
	var stderr bytes.Buffer
	h := r.helper(&stderr)
	if _, _, err := h.Get(ecrHost); err != nil {
		t.Fatal(err)
	}
	r.fetch.set("token-new-role", KeyID("AKIAROLE2"), nil)
	if _, s, _ := h.Get("123456789012.dkr.ecr.eu-west-1.amazonaws.com"); s != "token-new-role@eu-west-1" {
		t.Fatalf("got %q", s)
	}
	if !strings.Contains(stderr.String(), "AWS identity for these credentials changed; dropped 1 token") {
		t.Errorf("stderr = %q", stderr.String())
	}
	if _, s, _ := h.Get(ecrHost); s != "token-new-role@us-east-1" || r.fetch.calls.Load() != 3 {
		t.Errorf("the old identity's token was served: %q after %d calls", s, r.fetch.calls.Load())
	}
}

func TestConcurrentGetsFetchOnce(t *testing.T) {
	r := newECRRig(t)
	var wg sync.WaitGroup
	secrets := make([]string, 8)
	for i := range secrets {
		wg.Go(func() {
			var stderr bytes.Buffer
			_, secrets[i], _ = r.helper(&stderr).Get(ecrHost)
		})
	}
	wg.Wait()
	if n := r.fetch.calls.Load(); n != 1 {
		t.Errorf("8 concurrent gets made %d fetches, want 1", n)
	}
	for i, s := range secrets {
		if s != "token-1@us-east-1" {
			t.Errorf("get %d = %q", i, s)
		}
	}
}

func TestBrokenCacheIsReplaced(t *testing.T) {
	r := newECRRig(t)
	dir := filepath.Join(r.state, TokenCacheDirName)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "ecr.json"), []byte("{not json"), 0o600)
	var stderr bytes.Buffer
	if _, s, err := r.helper(&stderr).Get(ecrHost); err != nil || s != "token-1@us-east-1" {
		t.Fatalf("get over a broken cache = %q, %v", s, err)
	}
	if _, s, _ := r.helper(&stderr).Get(ecrHost); s != "token-1@us-east-1" || r.fetch.calls.Load() != 1 {
		t.Errorf("the replaced cache did not serve: %q after %d calls", s, r.fetch.calls.Load())
	}
}

func TestTokenFreshAndValid(t *testing.T) {
	req := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tok := Token{Secret: "s", RequestedAt: req, ExpiresAt: req.Add(12 * time.Hour)}
	for _, tc := range []struct {
		at           time.Duration
		fresh, valid bool
	}{
		{0, true, true},
		{5*time.Hour + 59*time.Minute, true, true},
		{6 * time.Hour, false, true},
		{11*time.Hour + 58*time.Minute, false, true},
		{11*time.Hour + 59*time.Minute, false, false},
		{13 * time.Hour, false, false},
	} {
		now := req.Add(tc.at)
		if tok.Fresh(now) != tc.fresh || tok.Valid(now) != tc.valid {
			t.Errorf("at +%s: fresh %v valid %v, want %v %v", tc.at, tok.Fresh(now), tok.Valid(now), tc.fresh, tc.valid)
		}
	}
	if (Token{RequestedAt: req, ExpiresAt: req.Add(time.Hour)}).Valid(req) {
		t.Error("a token without a secret is valid")
	}
}

func TestIdentityHint(t *testing.T) {
	stamps := map[string]time.Time{"/home/a/.aws/config": time.Unix(100, 0)}
	stamp := func(p string) (int64, time.Time, bool) {
		m, ok := stamps[p]
		return 10, m, ok
	}
	hint := func(m map[string]string) string { return IdentityHint(agentenv.FromMap(m), 1000, stamp) }
	base := map[string]string{"HOME": "/home/a", "AWS_ACCESS_KEY_ID": "AKIAONE", "AWS_SECRET_ACCESS_KEY": "s1", "PATH": "/bin"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range base {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	h0 := hint(base)
	if strings.Contains(h0, "AKIA") || len(h0) != 32 {
		t.Errorf("hint %q", h0)
	}
	same := []map[string]string{with("AWS_SECRET_ACCESS_KEY", "s2"), with("PATH", "/usr/bin"), with("AWS_SESSION_TOKEN", "t2"), with("BUILDKITE_JOB_ID", "j2")}
	for _, m := range same {
		if hint(m) != h0 {
			t.Errorf("hint changed with %v", m)
		}
	}
	differ := []map[string]string{
		with("AWS_ACCESS_KEY_ID", "AKIATWO"), with("AWS_PROFILE", "deploy"), with("AWS_ROLE_ARN", "arn:aws:iam::1:role/x"),
		with("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), with("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds"),
		with("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:1"), with("HOME", "/home/b"), with("AWS_CONFIG_FILE", "/etc/aws/config"),
	}
	for _, m := range differ {
		if hint(m) == h0 {
			t.Errorf("hint did not change with %v", m)
		}
	}
	if IdentityHint(agentenv.FromMap(base), 1001, stamp) == h0 {
		t.Error("hint did not change with the uid")
	}
	stamps["/home/a/.aws/config"] = time.Unix(200, 0)
	if hint(base) == h0 {
		t.Error("hint did not change when the shared config file changed")
	}
}

// TestRotatedKeysDoNotPileUp: with a new access key every hour (assumed
// roles), old hints and their tokens go once expired, and there is one
// fetch lock per registry.
func TestRotatedKeysDoNotPileUp(t *testing.T) {
	r := newECRRig(t)
	r.fetch.ttl = time.Hour
	var stderr bytes.Buffer
	for i := range 30 {
		key := fmt.Sprintf("ASIAROTATED%04d", i)
		r.env = agentenv.FromMap(map[string]string{"HOME": "/home/agent", "AWS_ACCESS_KEY_ID": key})
		r.fetch.set("t", KeyID(key), nil)
		if _, _, err := r.helper(&stderr).Get(ecrHost); err != nil {
			t.Fatal(err)
		}
		r.clock.Add(time.Hour)
	}
	data, _ := os.ReadFile(filepath.Join(r.state, TokenCacheDirName, "ecr.json"))
	var f tokenFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Tokens) > 2 || len(f.Identities) > 2 {
		t.Errorf("after 30 rotations the cache holds %d tokens and %d identities", len(f.Tokens), len(f.Identities))
	}
	locks, _ := filepath.Glob(filepath.Join(r.state, TokenCacheDirName, "fetch-*.lock"))
	if len(locks) != 1 {
		t.Errorf("fetch locks: %q, want one for the one registry", locks)
	}
}
