package builder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/builder/namespace"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// Variables the builder choice exports to the job.
const (
	HostVar       = "BUILDKIT_HOST"
	TLSDirVar     = "BUILDKIT_TLS_DIR"
	TLSServerName = "BUILDKIT_TLS_SERVERNAME"
)

// DefaultDockerSocket is where the host's docker daemon listens unless
// DOCKER_HOST says otherwise.
const DefaultDockerSocket = "/var/run/docker.sock"

// SetupOptions are what Select needs for one job, as data.
type SetupOptions struct {
	Config       *config.Config
	Env          *agentenv.Environment // the job's environment
	StateDir     string                // the resolved state dir
	JobDir       string
	DockerConfig string // the job's DOCKER_CONFIG
	Self         string // the dockhand executable; dockhand-cloud is next to it
	// DockerSocket is the default docker socket to look for; "" means
	// DefaultDockerSocket.
	DockerSocket string
}

// Selection is the builder chosen for a job and how it was chosen.
type Selection struct {
	Survey
	Chosen    int             // index in Options; -1 when none
	Builder   *buildx.Builder // nil: the job runs without dockhand's builder
	Fallbacks []string        // one line per kind that failed to set up before the chosen one
	Notes     []joblog.Line   // what the chosen kind's setup reused or did, and what the job should know of it
	Started   string          // what was started (the embedded buildkitd), if anything
	Exports   map[string]string
	// NamespaceToken is the job's Namespace tenant token file, on the
	// namespace kind: for dockhand's credential helper, never exported
	// (NSC_TOKEN_FILE would shadow a step's own `nsc auth` login).
	NamespaceToken string
	Took           time.Duration
}

// SpecFor builds the choice's inputs from the configuration and the job's
// environment. It looks for nsc, buildkitd and the docker socket; it starts
// nothing.
func SpecFor(cfg *config.Config, e *agentenv.Environment, stateDir, dockerSocket string) Spec {
	get := config.Getter(e)
	path := get("PATH")
	if dockerSocket == "" {
		dockerSocket = DefaultDockerSocket
	}
	dockerHost := get("DOCKER_HOST")
	if dockerHost == "" {
		if fi, err := os.Stat(dockerSocket); err == nil && fi.Mode()&os.ModeSocket != 0 {
			dockerHost = "unix://" + dockerSocket
		}
	}
	nsc := cfg.Namespace.NSC
	if nsc == "" {
		nsc, _ = proc.LookPath("nsc", path)
	}
	buildkitd := cfg.Embedded.Buildkitd
	if buildkitd == "" {
		buildkitd, _ = proc.LookPath("buildkitd", path)
	}
	socket := ""
	if stateDir != "" {
		socket = embedded.Socket(stateDir)
	}
	var rootless *embedded.Rootless
	if uid := os.Geteuid(); uid != 0 && slices.Contains(cfg.Builders, config.BuilderEmbedded) {
		r := embedded.HostRootless(uid, path, cfg.Embedded.Rootlesskit)
		rootless = &r
	}
	spec := Spec{
		Order:        cfg.Builders,
		Slug:         get("BUILDKITE_PIPELINE_SLUG"),
		JobID:        get("BUILDKITE_JOB_ID"),
		HostPlatform: "linux/" + runtime.GOARCH,
		Remote: RemoteSpec{Endpoints: cfg.Remote.Endpoints, Platforms: cfg.Remote.Platforms,
			TLS:           buildx.TLS{CA: cfg.Remote.CA, Cert: cfg.Remote.Cert, Key: cfg.Remote.Key, ServerName: cfg.Remote.ServerName},
			BalanceFactor: cfg.Remote.BalanceFactor},
		Namespace: NamespaceSpec{NSC: nsc, TenantID: cfg.Namespace.TenantID, Auth: cfg.Namespace.Auth},
		Local:     LocalSpec{DockerHost: dockerHost},
		Embedded:  EmbeddedSpec{Socket: socket, Buildkitd: buildkitd, Rootless: rootless},
	}
	if id := cachekey.IdentityFromEnv(get); id.IsFork() {
		spec = ForUntrusted(spec, cfg.Untrusted, cachekey.NormalizeRepo(id.PullRequestRepo))
	}
	return spec
}

// ForUntrusted is spec for a build of a pull request from fork: it runs
// where [untrusted] says, never on the builders trusted builds use, whose
// cache mounts (RUN --mount=type=cache) it could write and they would read
// (docs/cache.md).
func ForUntrusted(spec Spec, u config.Untrusted, fork string) Spec {
	spec.Untrusted = fmt.Sprintf("a pull request from a fork (%s): untrusted.builder = %q, never a builder of trusted builds", fork, u.Builder)
	spec.Remote = RemoteSpec{TLS: spec.Remote.TLS, BalanceFactor: spec.Remote.BalanceFactor}
	switch u.Builder {
	case config.BuilderRemote:
		spec.Order = []string{config.BuilderRemote}
		spec.Remote.Endpoints = slices.Clone(u.Endpoints)
	case config.BuilderEmbedded:
		spec.Order = []string{config.BuilderEmbedded}
	default:
		spec.Order = nil
	}
	return spec
}

// NewProber is the prober for a host: dockhand-cloud next to self, the
// configured timeout, results shared under STATE/builders.
func NewProber(cfg *config.Config, e *agentenv.Environment, stateDir, self string) *Prober {
	p := &Prober{
		Cloud:   cloud.Path(self),
		Env:     daemonEnv(e),
		Timeout: cfg.ProbeTimeout,
		TTL:     cfg.ProbeCacheTTL,
	}
	p.CacheDir = ProbeCacheDir(stateDir)
	return p
}

// ProbeCacheDir is where a host's jobs share probe results: STATE/builders
// ("" without a state dir).
func ProbeCacheDir(stateDir string) string {
	if stateDir == "" {
		return ""
	}
	return filepath.Join(stateDir, "builders")
}

// daemonEnv is the environment of the processes dockhand starts for the
// host rather than the job (dockhand-cloud, the embedded buildkitd): PATH
// and the proxy settings, nothing of the job's secrets.
func daemonEnv(e *agentenv.Environment) []string {
	var out []string
	for _, k := range []string{"PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"} {
		if v, ok := e.Get(k); ok && v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Select chooses and wires the job's builder: it probes the candidates
// (sharing recent results with the host's other jobs), plans, then takes
// the first kind in preference order that is ready or whose setup (nsc) or
// start (the embedded buildkitd) succeeds. The chosen builder is written
// into the job's docker config. When every configured kind is down it
// returns a *NoBuilderError (with the Selection, for the log); when no kind
// is configured at all, a Selection without a Builder. ctx ends with the
// job's cancel signal: discovery, probes, nsc and a buildkitd start stop
// waiting then.
func Select(ctx context.Context, o SetupOptions) (*Selection, error) {
	start := time.Now()
	cfg := o.Config
	prober := NewProber(cfg, o.Env, o.StateDir, o.Self)
	sel := &Selection{Survey: newSurvey(ctx, cfg, o.Env, o.StateDir, o.StateDir, o.Self, o.DockerSocket), Chosen: -1}
	defer func() { sel.Took = time.Since(start) }()
	spec := sel.Spec
	// Namespace's setup runs while the probes do; it reads results (is the
	// docker engine up?) only once probed is closed.
	var results Results
	probed := make(chan struct{})
	nsRun := startNamespace(ctx, o, spec, probed, func() bool { return spec.DockerUp(results) })
	defer nsRun.stop()
	results = sel.probe(ctx, prober)
	close(probed)

	setupErrs := map[string]string{}
	failed := func(kind string, err error) {
		setupErrs[kind] = err.Error()
		sel.Fallbacks = append(sel.Fallbacks, fmt.Sprintf("%s failed: %v; trying the next builder kind", kind, err))
	}
	var exports map[string]string
	for i, opt := range sel.Options {
		var b buildx.Builder
		switch opt.State {
		case Ready:
			b = opt.Builder
		case NeedsSetup:
			if nsRun == nil {
				continue
			}
			nb, exp, err := nsRun.wait()
			if note := nsRun.note(); note != "" {
				sel.Notes = append(sel.Notes, joblog.Notef("namespace: %s", note))
			}
			if err != nil {
				failed(opt.Kind, err)
				continue
			}
			b, exports = nb, exp
		case NeedsStart:
			started, err := startEmbedded(ctx, o, spec, prober)
			if err != nil {
				failed(opt.Kind, fmt.Errorf("starting buildkitd: %w", err))
				continue
			}
			sel.Started, b = started, opt.Builder
		default:
			continue
		}
		if err := wireBuilder(ctx, o, b); err != nil {
			return sel, err
		}
		sel.Chosen, sel.Builder = i, &b
		if b.Kind == config.BuilderRemote {
			for _, n := range b.Nodes {
				if err := prober.RecordRoute(ctx, remoteTarget(spec.Remote, n.Endpoint)); err != nil {
					sel.Notes = append(sel.Notes, joblog.Warningf("the host's next jobs will not count this one on its node's load: %v", err))
				}
			}
		}
		sel.Exports = builderExports(b, o.JobDir)
		sel.NamespaceToken = exports[namespace.TokenVar]
		for _, w := range sel.NodeWarnings(b) {
			sel.Notes = append(sel.Notes, joblog.Line{Severity: joblog.Warning, Text: w})
		}
		return sel, nil
	}
	if !Configured(sel.Options) || onlyEngineDown(sel.Options) {
		return sel, nil
	}
	return sel, &NoBuilderError{Options: sel.Options, Setup: setupErrs}
}

// startEmbedded starts the host's buildkitd unless another job did, and
// records it as up for the host's jobs. It says what happened.
func startEmbedded(ctx context.Context, o SetupOptions, spec Spec, prober *Prober) (string, error) {
	emb := embedded.Embedded{Dir: embedded.Dir(o.StateDir), Buildkitd: spec.Embedded.Buildkitd, Config: o.Config.Embedded.Config, Env: daemonEnv(o.Env),
		Rootless: spec.Embedded.Rootless}
	t0 := time.Now()
	started, pid, err := emb.Ensure(ctx)
	took := time.Since(t0)
	if err != nil {
		return "", err
	}
	_ = prober.Record(ctx, cloud.ProbeResult{Kind: cloud.ProbeBuildkit, Endpoint: spec.Embedded.Socket, OK: true, At: time.Now()})
	if started {
		how := ""
		if emb.Rootless != nil {
			how = "; rootless, under " + emb.Rootless.Rootlesskit
		}
		return fmt.Sprintf("started the host's buildkitd (pid %d) in %s; it outlives this job%s", pid, took.Round(time.Millisecond), how), nil
	}
	return fmt.Sprintf("the host's buildkitd (pid %d) was started by another job meanwhile", pid), nil
}

// onlyEngineDown reports whether the only kind configured is local and its
// engine is down: the job then runs as it would without dockhand (its
// docker commands meet the same engine), not with exit 125.
func onlyEngineDown(opts []Option) bool {
	down := false
	for _, o := range opts {
		switch {
		case o.State == NotConfigured:
		case o.Kind == config.BuilderLocal && o.State == Down:
			down = true
		default:
			return false
		}
	}
	return down
}

// wireBuilder writes the builder's instance file (nsc wrote its own) and the
// TLS links buildctl users need.
func wireBuilder(ctx context.Context, o SetupOptions, b buildx.Builder) error {
	if b.Kind != config.BuilderNamespace && b.Driver != buildx.DriverDocker {
		if err := buildx.WriteInstance(ctx, o.DockerConfig, b); err != nil {
			return fmt.Errorf("writing the builder %s: %w", b.Name, err)
		}
	}
	if b.Kind == config.BuilderNamespace {
		// Pipelines written from Namespace's docs name `--builder nsc-remote`
		// (what their own `nsc docker buildx setup` creates): the name works
		// without those setup lines, and a step that keeps them replaces it.
		alias := b
		alias.Name = buildx.NamespaceDocsName
		if err := buildx.WriteInstance(ctx, o.DockerConfig, alias); err != nil {
			return fmt.Errorf("writing the builder %s: %w", alias.Name, err)
		}
	}
	if b.Driver != buildx.DriverDocker {
		if err := buildx.SetCurrent(ctx, filepath.Join(o.DockerConfig, "buildx"), jobCurrentKey(o), b.Name); err != nil {
			return fmt.Errorf("selecting the builder %s: %w", b.Name, err)
		}
	}
	if tls := b.Nodes[0].TLS; tls.Enabled() && strings.HasPrefix(b.Endpoint(), "tcp://") {
		dir := filepath.Join(o.JobDir, "buildkit-tls")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		for name, target := range map[string]string{"ca.pem": tls.CA, "cert.pem": tls.Cert, "key.pem": tls.Key} {
			if target == "" {
				continue
			}
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil && !os.IsExist(err) {
				return fmt.Errorf("linking %s for buildctl: %w", name, err)
			}
		}
	}
	return nil
}

// jobCurrentKey is the key the job's buildx files its current builder
// under: the job's docker context, or its docker endpoint.
func jobCurrentKey(o SetupOptions) string {
	return buildx.CurrentKey(func(k string) string {
		if k == "DOCKER_CONFIG" {
			return o.DockerConfig
		}
		if o.Env == nil {
			return ""
		}
		v, _ := o.Env.Get(k)
		return v
	})
}

// builderExports are the job's variables for b. BUILDX_BUILDER is not one:
// dockhand's builder is the job's buildx store's current builder (wireBuilder),
// so a step's own `docker buildx use` or `buildx create --use` takes over
// from it as it would from any other. The engine's own builder gets none.
func builderExports(b buildx.Builder, jobDir string) map[string]string {
	m := map[string]string{}
	if b.Driver == buildx.DriverDocker {
		return m
	}
	switch b.Driver {
	case buildx.DriverRemote:
		m[HostVar] = b.Endpoint()
		if tls := b.Nodes[0].TLS; tls.Enabled() && strings.HasPrefix(b.Endpoint(), "tcp://") {
			m[TLSDirVar] = filepath.Join(jobDir, "buildkit-tls")
			if tls.ServerName != "" {
				m[TLSServerName] = tls.ServerName
			}
		}
	}
	return m
}

// jobAgent is the job's buildkite-agent ("" when there is none).
func jobAgent(e *agentenv.Environment) string {
	p, _ := proc.FindAgent(e)
	return p
}

// Lines describe the selection for the job log, one fact a line: the
// builder, why, the kinds passed over, each probe with its timing.
func (s *Selection) Lines() []joblog.Line {
	var lines []joblog.Line
	note := func(texts ...string) {
		for _, t := range texts {
			lines = append(lines, joblog.Line{Text: t})
		}
	}
	if s.Spec.Untrusted != "" {
		note("builder: " + s.Spec.Untrusted)
	}
	if s.Builder != nil {
		b := s.Builder
		note(fmt.Sprintf("builder: %s %q on %s, chosen in %s", b.Kind, b.Name, strings.Join(b.Endpoints(), ", "), s.Took.Round(time.Millisecond)))
		note("builder: why: " + s.Options[s.Chosen].Why)
		if b.Driver == buildx.DriverDocker {
			note("builder: as without dockhand: builds run on the engine's own builder and land in its images; " +
				"where a cache is configured dockhand adds --cache-from, and --cache-to only if the engine keeps its images in containerd (a classic-store engine cannot export cache)")
		}
	}
	for i, o := range s.Options {
		if s.Builder != nil && i >= s.Chosen {
			break
		}
		if o.State == NotConfigured || o.State == Down {
			note(o.WhyNot())
		}
	}
	for _, f := range s.Fallbacks {
		lines = append(lines, joblog.Warningf("builder: %s", f)) // the next kind builds, yet not the one asked for
	}
	note(s.DiscoveryLines()...)
	for _, n := range s.Notes {
		n.Text = "builder: " + n.Text
		lines = append(lines, n)
	}
	if s.Started != "" {
		note("builder: " + s.Started)
	}
	note(s.ProbeLines()...)
	switch {
	case s.Probes.Shared > 0 && s.Probes.Probed == 0:
		note(fmt.Sprintf("builder: probes shared by another job %s ago", s.Probes.Age.Round(time.Millisecond)))
	case s.Probes.Shared > 0:
		note(fmt.Sprintf("builder: %d probe(s) shared by another job %s ago, %d probed", s.Probes.Shared, s.Probes.Age.Round(time.Millisecond), s.Probes.Probed))
	case s.Probes.Probed > 0:
		note(fmt.Sprintf("builder: probed %d endpoint(s) in %s", s.Probes.Probed, s.Probes.Took.Round(time.Millisecond)))
	}
	if s.Probes.Note != "" {
		note("builder: " + s.Probes.Note)
	}
	if s.Builder != nil {
		var vars []string
		for _, k := range []string{HostVar, TLSDirVar, TLSServerName} {
			if v, ok := s.Exports[k]; ok {
				vars = append(vars, k+"="+v)
			}
		}
		if len(vars) > 0 {
			note("builder: " + strings.Join(vars, " "))
		}
	}
	return lines
}
