package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// JobDirVar names the variable that tells the helper which job it serves.
const JobDirVar = "DOCKHAND_JOB_DIR"

// ErrNoJob is returned by store/erase outside a dockhand job.
var ErrNoJob = errors.New("not inside a dockhand job (" + JobDirVar + " is not set): credentials are only stored per job")

// errNoCredentials means a source has nothing for the registry: docker goes
// anonymous, and nothing is printed.
var errNoCredentials = errors.New("no credentials")

// IsNoCredentials reports whether a Lookup error only means that no source
// has credentials for the registry (docker goes anonymous), rather than
// that a source failed.
func IsNoCredentials(err error) bool { return errors.Is(err, errNoCredentials) }

// Defaults of Options.
const (
	DefaultLookupTimeout = 45 * time.Second // one get, ECR retries included
	DefaultLockWait      = 40 * time.Second // waiting for a concurrent fetch (within the lookup's bound)
)

// Options configure a Helper. Everything comes in as data.
type Options struct {
	// JobDir is the job's dir ("" outside a job): its `docker login` store,
	// its OIDC token cache and its record of what was redacted.
	JobDir string
	// StateDir holds the host's shared ECR token cache ("" for none).
	StateDir string
	Settings Settings
	// Env is the helper's environment: AWS identity hints, PATH, the Job
	// API socket, and the environment of the programs it runs.
	Env *agentenv.Environment
	UID int
	// Cloud is the dockhand-cloud executable, which fetches ECR tokens.
	Cloud string
	// Log gets one warning per problem (never a secret) and, with Debug,
	// where each credential came from; nil discards.
	Log   *joblog.Logger
	Debug bool

	// Seams for tests; zero values are the real thing.
	Now       func() time.Time
	FetchECR  FetchECR
	FileStamp FileStamp
	LockWait  time.Duration
	Timeout   time.Duration
}

// Helper is docker-credential-dockhand: the job's credsStore. It serves
// what the job stored with `docker login` first, then routes by host (see
// Resolve) to ECR, ECR Public, nscr.io, Buildkite Packages or a static
// file, else answers "not found" so docker carries on anonymously.
type Helper struct {
	o     Options
	store *Store // nil outside a job
}

var _ credentials.Helper = (*Helper)(nil)

// NewHelper builds a helper for the job whose dir is jobDir ("" outside a
// job) with no registries configured.
func NewHelper(jobDir string) *Helper { return New(Options{JobDir: jobDir}) }

// New builds a helper.
func New(o Options) *Helper {
	if o.Env == nil {
		o.Env = agentenv.New()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FetchECR == nil {
		// The environment is copied only when a token is fetched: not on
		// a cache hit.
		o.FetchECR = func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error) {
			return ExecECRToken(o.Cloud, o.Env.ToSlice())(ctx, reg)
		}
	}
	if o.FileStamp == nil {
		o.FileStamp = statStamp
	}
	if o.LockWait == 0 {
		o.LockWait = DefaultLockWait
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultLookupTimeout
	}
	h := &Helper{o: o}
	if o.JobDir != "" {
		h.store = JobStore(o.JobDir)
		h.store.Wait = o.LockWait
		fetch := o.FetchECR
		h.o.FetchECR = func(ctx context.Context, reg hosts.Registry) (ECRTokenReply, error) {
			CountECRCall(o.JobDir)
			return fetch(ctx, reg)
		}
	}
	return h
}

func statStamp(path string) (int64, time.Time, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, time.Time{}, false
	}
	return fi.Size(), fi.ModTime(), true
}

// Credential is what a lookup found.
type Credential struct {
	Username, Secret string
	Source           Source
	// Detail says where exactly it came from, for doctor and debug output;
	// it never holds the secret.
	Detail    string
	ExpiresAt time.Time // zero when unknown or never
}

// protocolCall is the context of one call of docker's credential-helper
// protocol (Add, Delete, Get): its interface carries none, and each call is
// a process of its own that the job's signals end, so this is its root.
// Every wait below it is bounded (Options.Timeout, Options.LockWait).
func protocolCall() context.Context { return context.Background() }

// Add stores a `docker login` in the job's store, and adds the secret to
// the job's log redactor.
func (h *Helper) Add(c *credentials.Credentials) error {
	return h.AddLogin(protocolCall(), Login{ServerURL: c.ServerURL, Username: c.Username, Secret: c.Secret})
}

// AddLogin stores a login in the job's store and adds its secret to the
// job's log redactor: the one way a login enters a job (`docker login`, or
// one carried over from another hook's docker config), so none is served
// unredacted. ctx ends its waits for the store's and the redactor's locks.
func (h *Helper) AddLogin(ctx context.Context, l Login) error {
	if h.store == nil {
		return ErrNoJob
	}
	if err := h.store.Put(ctx, l); err != nil {
		return err
	}
	h.redact(ctx, l.Secret)
	return nil
}

// Delete forgets a login (`docker logout`).
func (h *Helper) Delete(serverURL string) error {
	if h.store == nil {
		return ErrNoJob
	}
	return h.store.Delete(protocolCall(), serverURL)
}

// Get returns the credentials for a registry, or the standard "not found"
// so docker carries on anonymously. A source that fails costs one line on
// stderr, never the build.
func (h *Helper) Get(serverURL string) (string, string, error) {
	ctx := protocolCall()
	c, route, err := h.Lookup(ctx, serverURL)
	if err != nil {
		if !errors.Is(err, errNoCredentials) {
			h.o.Log.Warnf("no credentials for %s from %s: %v", route.Host, route.Source, err)
		}
		return "", "", credentials.NewErrCredentialsNotFound()
	}
	if h.o.Debug {
		h.o.Log.Printf("credentials for %s from %s (%s)", route.Host, c.Source, c.Detail)
	}
	if c.Source != SourceJobLogin {
		h.redact(ctx, c.Secret)
	}
	return c.Username, c.Secret, nil
}

// Lookup finds the credentials for serverURL and says where they came from.
// The error wraps errNoCredentials when no source has any. It takes
// Options.Timeout at most, and no longer than ctx lasts.
func (h *Helper) Lookup(ctx context.Context, serverURL string) (Credential, Route, error) {
	route := Resolve(serverURL, h.o.Settings)
	if h.store != nil {
		l, ok, err := h.store.Get(serverURL)
		if err != nil {
			h.warnf("%v", err)
		}
		if ok {
			return Credential{Username: l.Username, Secret: l.Secret, Source: SourceJobLogin,
				Detail: "docker login in this job"}, Route{Source: SourceJobLogin, Host: route.Host}, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.Timeout)
	defer cancel()
	var c Credential
	var err error
	switch route.Source {
	case SourceECR, SourceECRPublic:
		c, err = h.ecr(ctx, route)
	case SourceNamespace:
		asked := serverURL
		if route.AliasOf != "" {
			asked = route.AliasOf // docker-credential-nsc answers for Namespace's own hosts only
		}
		c, err = h.nsc(ctx, asked)
	case SourcePackages:
		c, err = h.packages(ctx, route.Audience)
	case SourceStatic:
		c, err = readStatic(route.File)
	default:
		err = errNoCredentials
		if route.Note != "" {
			err = fmt.Errorf("%w: %s", errNoCredentials, route.Note)
		}
	}
	if err != nil {
		return Credential{}, route, err
	}
	c.Source = route.Source
	return c, route, nil
}

// List returns registry -> username for the job's logins. Nothing else is
// listed: a shared cache's tokens are no job's business.
func (h *Helper) List() (map[string]string, error) {
	out := map[string]string{}
	if h.store == nil {
		return out, nil
	}
	logins, err := h.store.List()
	if err != nil {
		return nil, err
	}
	for _, l := range logins {
		out[l.ServerURL] = l.Username
	}
	return out, nil
}

// ecr serves an ECR or ECR Public token from the host's shared cache,
// fetching it (once for all concurrent callers) when it is missing or past
// half its life, and falling back to a still valid cached token when the
// fetch fails.
func (h *Helper) ecr(ctx context.Context, route Route) (Credential, error) {
	reg := route.Registry
	detail := func(t Token, how string) Credential {
		d := how
		if route.AliasOf != "" {
			d += ", as " + route.AliasOf
		}
		return Credential{Username: t.Username, Secret: t.Secret, Detail: d, ExpiresAt: t.ExpiresAt}
	}
	if h.o.StateDir == "" {
		reply, err := h.o.FetchECR(ctx, reg)
		if err != nil {
			return Credential{}, err
		}
		return detail(tokenOf(reply, h.o.Now()), "ECR API, not cached"), nil
	}
	cache := &TokenCache{Dir: filepath.Join(h.o.StateDir, TokenCacheDirName)}
	hint := IdentityHint(h.o.Env, h.o.UID, h.o.FileStamp)
	key := reg.CacheKey()
	if t, ok, _ := cache.Get(hint, key); ok && t.Fresh(h.o.Now()) {
		cache.MarkUsed(ctx, hint, key, t, h.o.Now())
		return detail(t, "cached token"), nil
	}
	unlock, err := cache.LockFetch(ctx, key, h.o.LockWait)
	if err != nil {
		h.warnf("%v; fetching the ECR token without waiting", err)
	} else {
		defer unlock()
		if t, ok, _ := cache.Get(hint, key); ok && t.Fresh(h.o.Now()) {
			cache.MarkUsed(ctx, hint, key, t, h.o.Now())
			return detail(t, "cached token"), nil
		}
	}
	requested := h.o.Now()
	reply, err := h.o.FetchECR(ctx, reg)
	if err != nil {
		if t, ok, _ := cache.Get(hint, key); ok && t.Valid(h.o.Now()) {
			h.warnf("refreshing the ECR token for %s failed (%v); using the cached one, valid until %s",
				route.Host, err, t.ExpiresAt.UTC().Format(time.RFC3339))
			return detail(t, "cached token, refresh failed"), nil
		}
		return Credential{}, err
	}
	t := tokenOf(reply, requested)
	t.Host, t.UsedAt = reg.Host, requested
	dropped, err := cache.Put(ctx, hint, key, t, h.o.Now())
	if err != nil {
		h.warnf("could not cache the ECR token: %v", err)
	}
	if dropped > 0 {
		h.warnf("the AWS identity for these credentials changed; dropped %d token(s) cached for the previous one", dropped)
	}
	return detail(t, "ECR API"), nil
}

func tokenOf(r ECRTokenReply, requested time.Time) Token {
	return Token{Username: r.Username, Secret: r.Secret, ProxyEndpoint: r.ProxyEndpoint,
		RequestedAt: requested, ExpiresAt: r.ExpiresAt, KeyID: r.KeyID}
}

// warnf prints one warning on the job log.
func (h *Helper) warnf(format string, args ...any) {
	h.o.Log.Warnf(format, args...)
}

// Serve answers one credential-helper call (get, store, erase, list,
// version) on in/out, exactly as the docker-credential-helpers protocol
// says. A protocol error is returned for the caller to print on stdout.
func Serve(h *Helper, args []string, in io.Reader, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: docker-credential-dockhand <store|get|erase|list|version>")
	}
	return credentials.HandleCommand(h, args[0], in, out)
}
