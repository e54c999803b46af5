package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
)

// DefaultPath is where the configuration file is read from unless --config
// or DOCKHAND_CONFIG names another.
const DefaultPath = "/etc/dockhand/dockhand.toml"

// Config is dockhand's resolved configuration for one agent queue.
type Config struct {
	StateDir     string        // state_dir: job directories live under it
	Shell        string        // shell: the real shell `dockhand shell` execs
	Builders     []string      // builders: builder kinds in preference order
	ProbeTimeout time.Duration // probe_timeout: deadline of one builder health probe
	// strict: a build whose cache flags the buildx shim could not work out
	// (arguments it cannot read, bake targets it cannot learn) fails instead
	// of running without them. It decides nothing about builders (see
	// BuildersOptional).
	Strict bool
	Debug  bool // debug: verbose output
	// annotate: the job's build annotation on the build page, "auto" (when
	// the job built on dockhand's builder), "always" or "off"
	Annotate string

	// probe_cache_ttl: how long one job's probe results serve the host's
	// other jobs (0: every job probes)
	ProbeCacheTTL time.Duration
	// builders_optional: when every configured builder is down the job runs
	// without dockhand's builder (one warning) instead of failing with 125
	BuildersOptional bool

	Remote    Remote
	Namespace Namespace
	Embedded  Embedded
	Untrusted Untrusted
	Cache     Cache
	Packages  Packages
	Registry  RegistrySettings

	Path    string            // the file that was read ("" when defaults only)
	Queue   string            // the agent's queue tag ("" when it has none)
	Queues  []string          // the file's [queue.NAME] sections, sorted
	Sources map[string]Source // dotted key -> where its value came from, for every key
}

// Remote is the [remote] table: a self-hosted buildkitd pool, listed or
// discovered (see package fleet).
type Remote struct {
	Endpoints  []string // tcp://host:port or unix:///path
	CA         string   // mTLS CA certificate file
	Cert       string   // mTLS client certificate file
	Key        string   // mTLS client key file
	ServerName string   // TLS server name to verify, if not the endpoint's host
	Platforms  []PlatformNodes
	// DiscoveryTTL is how long a discovered membership (dns://, srv://,
	// ec2:// endpoints) serves the host's jobs before it is asked again.
	DiscoveryTTL time.Duration
	// DNSServer is the HOST:PORT asked for dns:// and srv:// endpoints
	// ("": the system's resolvers).
	DNSServer string
	// EC2EndpointURL is the EC2 API asked for ec2:// endpoints ("": AWS's
	// for the region). A job's AWS_ENDPOINT_URL* variables are not used for
	// discovery: a pipeline must not pick the host's builders.
	EC2EndpointURL string
	// AllowLoopback lets discovered members be loopback addresses
	// (a pool on this very host, as in dockhand's own tests). Only the
	// configuration file sets it: no variable, so no pipeline, can.
	AllowLoopback bool
	// BalanceFactor bounds a node's load for routing, in percent of the
	// mean over the pool (consistent hashing with bounded loads); 0 routes
	// by pipeline only.
	BalanceFactor int
	// RetryLostBuilds: a build whose node died mid-build runs again, once,
	// on the pipeline's next healthy node (docs/reliability.md).
	RetryLostBuilds bool
}

// PlatformNodes is one [[remote.platform]] entry: the native nodes for a
// platform, which together form one multi-node builder.
type PlatformNodes struct {
	Platform  string   `json:"platform"` // os/arch[/variant]
	Endpoints []string `json:"endpoints"`
}

// Namespace is the [namespace] table: Namespace remote builders.
type Namespace struct {
	NSC          string // the nsc executable ("": nsc on PATH)
	Auth         string // "oidc" (Buildkite OIDC) or "cognito" (AWS Cognito)
	TenantID     string
	AWSRegion    string
	IdentityPool string
}

// Embedded is the [embedded] table: the host's shared buildkitd that
// dockhand starts when a queue lists the "embedded" builder kind.
type Embedded struct {
	Buildkitd string // the buildkitd executable ("": buildkitd on PATH)
	Config    string // a buildkitd.toml for it ("": none)
	// Rootlesskit runs it for an unprivileged agent ("": rootlesskit on PATH).
	Rootlesskit string
}

// Untrusted is the [untrusted] table: where builds of pull requests from
// forks run, never on a builder trusted builds use (their cache mounts).
type Untrusted struct {
	// Builder is UntrustedNone (no builder of dockhand's), BuilderRemote
	// (the pool in Endpoints) or BuilderEmbedded (the host's buildkitd,
	// when trusted builds do not use it).
	Builder   string
	Endpoints []string // the untrusted pool: tcp:// nodes or discovery sources
}

// Cache is the [cache] table: BuildKit cache injection.
type Cache struct {
	Mode       string // auto, always or off
	Backend    string // registry, s3 or local
	Repository string
	MaxAgeDays int
	S3         CacheS3Settings
	Local      CacheLocalSettings
}

// CacheS3Settings is the [cache.s3] table.
type CacheS3Settings struct {
	Bucket      string
	Region      string
	Prefix      string
	EndpointURL string // "" for AWS, else an S3-compatible server's http(s) URL
}

// CacheLocalSettings is the [cache.local] table.
type CacheLocalSettings struct {
	Dir     string
	MaxSize int64 // bytes
}

// Packages is the [packages] table: Buildkite Package Registries.
type Packages struct {
	Registries []string // ORG/REGISTRY, served with the agent's OIDC token
}

// RegistrySettings is the [registry] table: credentials the helper serves
// besides ECR, nscr.io and Buildkite Packages (see registry_settings.go).
type RegistrySettings struct {
	Static     []string // HOST=FILE: a 0600 JSON file holding the host's username and password
	ECRAliases []string // HOST=ECR_HOST: serve HOST with the ECR credentials of ECR_HOST
	// HOST=NAMESPACE_HOST: serve HOST with docker-credential-nsc's
	// credentials for NAMESPACE_HOST (nscr.io)
	NSCRAliases []string
	// RefreshTokens: the bootstrap refreshes, beside the job, the host's
	// recently used ECR tokens that are about to need a refresh, so the
	// job's first get is served from the cache (default true)
	RefreshTokens bool
	// ECRRegistries are ECR private registries (ACCOUNT.dkr.ecr.REGION.…)
	// the job's docker config sends to dockhand's helper besides those named
	// elsewhere (the cache repository's, ecr_aliases' targets)
	ECRRegistries []string
	// CredsStore: the job's config.json names dockhand's helper as its
	// credsStore, so any ECR registry (and nscr.io subdomain) is served
	// without a login; a docker config then needs dockhand's helper to be
	// read at all (default false: credHelpers for the registries dockhand
	// can name, the job's own logins in config.json as docker writes them)
	CredsStore bool
}

// Options says where Load finds its inputs.
type Options struct {
	Flag string                // the --config value, "" if not given
	Env  *agentenv.Environment // the agent's or job's environment
	// ReadFile reads the configuration file; nil means os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// Parse reads a configuration file's contents and resolves it for queue: the
// defaults, then the file's top-level keys, then its [queue.NAME] section for
// queue. Every section is checked, whichever queue is asked for. All problems
// are returned together, one per line sorted by line, each naming path, line
// and key. Parse does not look at the environment.
func Parse(path string, data []byte, queue string) (*Config, error) {
	fp := newFileParser(path)
	fp.parse(data)
	c := Default(queue)
	c.Path = path
	fp.apply(c, "", Source{Kind: SourceFile, File: path})
	for q := range fp.sections {
		if q != "" {
			c.Queues = append(c.Queues, q)
		}
	}
	slices.Sort(c.Queues)
	if queue != "" {
		fp.apply(c, queue, Source{Kind: SourceQueue, File: path, Queue: queue})
	}
	errs := fp.errs
	if len(errs) == 0 {
		errs = c.crossCheck()
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return c, nil
}

// Load resolves the configuration for the agent or job whose environment is
// o.Env: the file named by o.Flag, else by DOCKHAND_CONFIG, else DefaultPath
// (which may be missing: the defaults apply), its section for the agent's
// queue, then DOCKHAND_* overrides. In a job's environment only the
// pipeline-safe overrides apply; others are ignored with a warning.
func Load(o Options) (*Config, []string, error) {
	e := o.Env
	if e == nil {
		e = agentenv.New()
	}
	read := o.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	inJob := InJob(e)
	var warnings []string

	path, named := DefaultPath, false
	if v, _ := e.Get("DOCKHAND_CONFIG"); v != "" {
		if inJob {
			warnings = append(warnings, ignoredMessage("DOCKHAND_CONFIG"))
		} else {
			path, named = v, true
		}
	}
	if o.Flag != "" {
		path, named = o.Flag, true
	}

	queue, w := agentQueue(e, inJob, read)
	warnings = append(warnings, w...)
	var c *Config
	data, err := read(path)
	switch {
	case err == nil:
		if c, err = Parse(path, data, queue); err != nil {
			return nil, warnings, err
		}
	case !named && errors.Is(err, fs.ErrNotExist):
		c = Default(queue)
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, warnings, fmt.Errorf("%s: cannot read the configuration file: %w", path, err)
	}

	w, errs := c.applyEnv(e, inJob)
	warnings = append(warnings, w...)
	if len(errs) == 0 {
		errs = c.crossCheck()
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	return c, warnings, nil
}

func ignoredMessage(name string) string {
	return fmt.Sprintf("ignoring %s from the job environment: only %s may be set by a pipeline",
		name, strings.Join(pipelineSafeNames(), ", "))
}

// applyEnv applies the DOCKHAND_* overrides found in e.
func (c *Config) applyEnv(e *agentenv.Environment, inJob bool) (warnings []string, errs []error) {
	var names []string
	for name := range e.Dump() {
		if strings.HasPrefix(name, "DOCKHAND_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		v, known := Lookup(name)
		value, _ := e.Get(name)
		switch {
		case !known:
			msg := "ignoring unknown variable " + name
			if s := suggest(name, overrideNames()); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			}
			warnings = append(warnings, msg)
		case v.Key == "" || value == "":
			// Set by dockhand itself, DOCKHAND_CONFIG (already used), or empty.
		case inJob && v.Kind != PipelineSafe:
			warnings = append(warnings, ignoredMessage(name))
		default:
			w, err := c.applyVar(v, value, inJob)
			if w != "" {
				warnings = append(warnings, w)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return warnings, errs
}

// applyVar applies one DOCKHAND_* variable's value. In a job, a value that
// cannot apply is ignored with a warning: a pipeline's typo costs its own
// setting, never the operator's configuration.
func (c *Config) applyVar(v Variable, value string, inJob bool) (warning string, err error) {
	undo, err := c.override(v, value, inJob)
	if err == nil && inJob {
		// The file passed these rules; a pipeline's variable may not break
		// them.
		if cerrs := c.crossCheck(); len(cerrs) > 0 {
			undo()
			err = errors.Join(cerrs...)
		}
	}
	switch {
	case err != nil && inJob:
		return fmt.Sprintf("ignoring %s=%q from the job environment: %v", v.Name, value, err), nil
	case err != nil:
		return "", fmt.Errorf("%s=%q: %w", v.Name, value, err)
	}
	return "", nil
}

// BuildSettings are the settings a job's step may change from one build to
// the next: the buildx shim reads their pipeline-safe variables
// (DOCKHAND_CACHE, DOCKHAND_STRICT, DOCKHAND_DEBUG,
// DOCKHAND_RETRY_LOST_BUILDS) again on every call.
type BuildSettings struct {
	CacheMode string // cache.mode
	Strict    bool   // strict
	Debug     bool   // debug
	RetryLost bool   // remote.retry_lost_builds
}

// buildKeys are the configuration keys of BuildSettings.
var buildKeys = []string{"cache.mode", "strict", "debug", "remote.retry_lost_builds"}

// WithOverrides returns s with the pipeline-safe variables of its keys found
// through lookup applied by the rules Load applies in a job: a value Load
// would refuse is ignored, with the warning Load gives.
func (s BuildSettings) WithOverrides(lookup func(string) string) (BuildSettings, []string) {
	c := &Config{Strict: s.Strict, Debug: s.Debug, Sources: map[string]Source{}}
	c.Cache.Mode = s.CacheMode
	c.Remote.RetryLostBuilds = s.RetryLost
	var warnings []string
	for _, v := range Variables {
		if v.Kind != PipelineSafe || !slices.Contains(buildKeys, v.Key) {
			continue
		}
		if value := lookup(v.Name); value != "" {
			if w, _ := c.applyVar(v, value, true); w != "" {
				warnings = append(warnings, w)
			}
		}
	}
	return BuildSettings{CacheMode: c.Cache.Mode, Strict: c.Strict, Debug: c.Debug, RetryLost: c.Remote.RetryLostBuilds}, warnings
}

// override applies one environment variable to the key it overrides; undo
// puts back the value and source it replaced.
func (c *Config) override(v Variable, value string, inJob bool) (undo func(), err error) {
	f, ok := fieldByKey(v.Key)
	if !ok {
		return nil, fmt.Errorf("no configuration key %q", v.Key)
	}
	val, err := f.fromString(value)
	if err == nil {
		err = f.validate(val)
	}
	if err == nil && inJob && f.key == "builders" {
		// A pipeline may narrow or reorder the configured kinds, not add one.
		for _, k := range val.([]string) {
			if !slices.Contains(c.Builders, k) {
				err = fmt.Errorf("builder kind %q is not enabled for this agent (builders = %s from %s)",
					k, formatValue(c.Builders), c.Sources["builders"])
				break
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.key, err)
	}
	prev := f.get(c)
	prevSource, hadSource := c.Sources[f.key]
	f.set(c, val)
	c.Sources[f.key] = Source{Kind: SourceEnv, Var: v.Name}
	return func() {
		f.set(c, prev)
		if hadSource {
			c.Sources[f.key] = prevSource
		} else {
			delete(c.Sources, f.key)
		}
	}, nil
}

func overrideNames() []string {
	var names []string
	for _, v := range Variables {
		if strings.HasPrefix(v.Name, "DOCKHAND_") {
			names = append(names, v.Name)
		}
	}
	return names
}

// validate re-checks every value of c, and the rules between them.
func (c *Config) validate() error {
	var errs []error
	for _, f := range schema() {
		if err := f.validate(f.get(c)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.key, err))
		}
	}
	errs = append(errs, c.crossCheck()...)
	return errors.Join(errs...)
}

// joinSorted joins errs, *Error ones sorted by line first.
func joinSorted(errs []error) error {
	line := func(err error) (int, int) {
		var e *Error
		if errors.As(err, &e) {
			return e.Line, e.Column
		}
		return 1 << 30, 0
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		la, ca := line(a)
		lb, cb := line(b)
		if la != lb {
			return la - lb
		}
		return ca - cb
	})
	return errors.Join(errs...)
}
