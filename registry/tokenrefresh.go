package registry

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// The background refresh of the host's ECR tokens.
//
// A get that finds its registry's token past half its life fetches a new
// one through dockhand-cloud, on the job's critical path. The bootstrap
// avoids that for the registries the host uses: while it sets up a job it
// claims (without waiting) the fetch lock of every token that a get would
// have to fetch within RefreshAhead and that a get used within
// RecentlyUsed, then fetches them beside the job. A get that comes while a
// refresh runs waits for it on the same lock, as it would for another
// get's fetch, and finds the new token: one API call, never two.
//
// Identity: the refresh computes the identity hint from the bootstrap's
// own environment — the one the job inherits — and touches only the tokens
// cached under that hint, fetching with that same environment. A token is
// cached under the hint of the environment that fetched it, and the hint
// covers every variable that selects the AWS credentials, so a pipeline
// whose step sets AWS_* variables of its own has another hint: its
// bootstrap never refreshes (nor reads) the tokens of another identity.

// Bounds of the background refresh.
const (
	// RefreshAhead: a token is refreshed when a get within this long would
	// have to fetch it (it would be past half its life by then).
	RefreshAhead = time.Hour
	// RecentlyUsed: only tokens a get used within this long are refreshed;
	// a registry the host stopped using is left to expire.
	RecentlyUsed = 24 * time.Hour
	// UsedStampEvery: a get served from the cache records the use only when
	// the record is older than this, so gets stay read-only but for one
	// rewrite per registry an hour.
	UsedStampEvery = time.Hour
	// markUsedWait bounds a get's wait to record a use: it is only a hint.
	markUsedWait = time.Second
)

// lastUsed is when a get last used t: UsedAt, else (a token cached before
// uses were recorded) when it was fetched.
func (t Token) lastUsed() time.Time {
	if t.UsedAt.IsZero() {
		return t.RequestedAt
	}
	return t.UsedAt
}

// dueForRefresh returns, sorted, the registry keys of the tokens cached in
// f under hint that the background refresh fetches at now: served under the
// hint's identity, used within RecentlyUsed, and no longer fresh (a get
// would fetch) within RefreshAhead. Tokens of other hints are never due.
func dueForRefresh(f tokenFile, hint string, now time.Time) []string {
	var due []string
	for k, t := range f.Tokens {
		h, key, ok := strings.Cut(k, "/")
		if !ok || h != hint || t.KeyID == "" || t.KeyID != f.Identities[hint] {
			continue
		}
		if now.Sub(t.lastUsed()) > RecentlyUsed || t.Fresh(now.Add(RefreshAhead)) {
			continue
		}
		if _, ok := refreshRegistry(key, t); ok {
			due = append(due, key)
		}
	}
	slices.Sort(due)
	return due
}

// refreshRegistry is the registry to ask for key's token: the host it was
// fetched for, else the standard host of key's account and region.
func refreshRegistry(key string, t Token) (hosts.Registry, bool) {
	if t.Host != "" {
		if r := hosts.Parse(t.Host); r.CacheKey() == key {
			return r, true
		}
	}
	host := hosts.ECRPublicHost
	if rest, ok := strings.CutPrefix(key, "ecr/"); ok {
		account, region, _ := strings.Cut(rest, "/")
		host = hosts.ECRHost(account, region, "")
	}
	r := hosts.Parse(host)
	return r, r.CacheKey() == key
}

// MarkUsed records that a get used the token cached for registryKey under
// hint at now, if the record is older than UsedStampEvery. A failure only
// loses the hint: it is not reported.
func (c *TokenCache) MarkUsed(ctx context.Context, hint, registryKey string, t Token, now time.Time) {
	if now.Sub(t.lastUsed()) < UsedStampEvery {
		return
	}
	unlock, err := jsonfile.Lock(ctx, c.file()+".lock", markUsedWait)
	if err != nil {
		return
	}
	defer unlock()
	f, err := c.load()
	if err != nil {
		return
	}
	cur, ok := f.Tokens[entryKey(hint, registryKey)]
	if !ok || cur.Secret != t.Secret {
		return // replaced meanwhile: the new one carries its own record
	}
	cur.UsedAt = now
	f.Tokens[entryKey(hint, registryKey)] = cur
	_ = jsonfile.Write(c.file(), f)
}

// RefreshOptions configure a background refresh. Everything comes in as
// data.
type RefreshOptions struct {
	StateDir string
	// Env is the bootstrap's environment: the identity hint is computed
	// from it and the tokens are fetched with it.
	Env   *agentenv.Environment
	UID   int
	Cloud string // dockhand-cloud

	// Seams for tests; zero values are the real thing.
	Now       func() time.Time
	FetchECR  FetchECR
	FileStamp FileStamp
}

// Refresh is a set of due tokens whose fetch locks are held, to be
// fetched by Run.
type Refresh struct {
	o      RefreshOptions
	cache  *TokenCache
	hint   string
	claims []refreshClaim
}

type refreshClaim struct {
	key     string
	reg     hosts.Registry
	usedAt  time.Time
	release func()
}

// ClaimRefresh finds the tokens due for a refresh under o.Env's identity
// and takes their fetch locks, without waiting: a registry whose lock
// another process holds is being fetched already and is left to it. It
// reads one file and stats two: it costs the job nothing noticeable.
func ClaimRefresh(o RefreshOptions) (*Refresh, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FileStamp == nil {
		o.FileStamp = statStamp
	}
	if o.Env == nil {
		o.Env = agentenv.New()
	}
	if o.FetchECR == nil {
		o.FetchECR = ExecECRToken(o.Cloud, o.Env.ToSlice())
	}
	r := &Refresh{o: o, cache: &TokenCache{Dir: filepath.Join(o.StateDir, TokenCacheDirName)},
		hint: IdentityHint(o.Env, o.UID, o.FileStamp)}
	if o.StateDir == "" {
		return r, nil
	}
	f, err := r.cache.load()
	if err != nil {
		return r, err
	}
	for _, key := range dueForRefresh(f, r.hint, o.Now()) {
		release, ok, err := filelock.TryLock(r.cache.fetchLockPath(key))
		if err != nil {
			r.Release()
			return r, err
		}
		if !ok {
			continue
		}
		// Another process may have fetched it since the file was read.
		if f, err = r.cache.load(); err != nil || !slices.Contains(dueForRefresh(f, r.hint, o.Now()), key) {
			release()
			continue
		}
		t := f.Tokens[entryKey(r.hint, key)]
		reg, _ := refreshRegistry(key, t)
		r.claims = append(r.claims, refreshClaim{key: key, reg: reg, usedAt: t.lastUsed(), release: release})
	}
	return r, nil
}

// Registries lists the claimed registries' hosts.
func (r *Refresh) Registries() []string {
	out := make([]string, len(r.claims))
	for i, c := range r.claims {
		out[i] = c.reg.Host
	}
	return out
}

// Run fetches every claimed token at once, caches each under the claim's
// hint with its use record kept, and lets each lock go when its fetch is
// done. It returns how many were refreshed and what failed.
func (r *Refresh) Run(ctx context.Context) (refreshed int, err error) {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, c := range r.claims {
		wg.Go(func() {
			defer c.release()
			err := r.fetch(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", c.reg.Host, err))
			} else {
				refreshed++
			}
		})
	}
	wg.Wait()
	r.claims = nil
	return refreshed, errors.Join(errs...)
}

func (r *Refresh) fetch(ctx context.Context, c refreshClaim) error {
	requested := r.o.Now()
	reply, err := r.o.FetchECR(ctx, c.reg)
	if err != nil {
		return err
	}
	t := tokenOf(reply, requested)
	t.Host, t.UsedAt = c.reg.Host, c.usedAt
	_, err = r.cache.Put(ctx, r.hint, c.key, t, r.o.Now())
	return err
}

// Release lets go of the claims Run has not taken: a refresh given up
// before it ran.
func (r *Refresh) Release() {
	for _, c := range r.claims {
		c.release()
	}
	r.claims = nil
}
