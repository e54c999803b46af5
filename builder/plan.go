// Package builder chooses a job's builder: the spec from the configuration
// (SpecFor), the probes shared between the host's jobs (Prober), the plan
// that orders the kinds and routes a pipeline within a pool (Plan, pure; a
// Survey is all of it), then the set-up of the first usable kind (Select).
// The kinds that need more than an instance file live beside it:
// builder/namespace and builder/embedded.
package builder

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
)

// Spec is everything the choice depends on besides probe results, as data.
type Spec struct {
	Order []string // builder kinds in preference order (builders)
	Slug  string   // BUILDKITE_PIPELINE_SLUG: the routing key
	JobID string   // BUILDKITE_JOB_ID: draws a hot pipeline's spill (BoundedRoute)
	// Untrusted says why the job is untrusted (a pull request from a fork)
	// and where that puts it ([untrusted]); "" for a trusted job.
	Untrusted    string
	HostPlatform string // this host's os/arch, the default node's platform when only per-platform nodes exist
	Remote       RemoteSpec
	Namespace    NamespaceSpec
	Local        LocalSpec
	Embedded     EmbeddedSpec
}

// RemoteSpec is the configured buildkitd pool.
type RemoteSpec struct {
	Endpoints []string
	Platforms []config.PlatformNodes
	TLS       buildx.TLS
	// Undiscovered are discovery sources that gave no node (see Discover).
	Undiscovered []string
	// BalanceFactor is remote.balance_factor: a node may have at most this
	// percentage of the mean load (BoundedRoute); 0 is pure affinity.
	BalanceFactor int
}

// NamespaceSpec says whether Namespace can be set up on this host.
type NamespaceSpec struct {
	NSC      string // the nsc executable found ("" when none)
	TenantID string
	Auth     string
}

// LocalSpec is the host's docker daemon.
type LocalSpec struct {
	DockerHost string // unix:///var/run/docker.sock or $DOCKER_HOST ("" when the host has none)
}

// EmbeddedSpec is the host's shared buildkitd.
type EmbeddedSpec struct {
	Socket    string // unix:///STATE/buildkitd/buildkitd.sock
	Buildkitd string // the buildkitd executable found ("" when none)
	// Rootless is set when dockhand runs unprivileged: it can start the
	// daemon only under rootlesskit, and only when Rootless.Problem is "".
	Rootless *embedded.Rootless
}

// State is how usable a builder kind is.
type State int

const (
	// NotConfigured: the kind has nothing set up on this host (no
	// endpoints, no nsc, no docker daemon); it is skipped.
	NotConfigured State = iota
	// Down: configured, but no candidate is healthy.
	Down
	// Ready: Builder can be used as it is.
	Ready
	// NeedsSetup: nsc must authenticate and set the builder up.
	NeedsSetup
	// NeedsStart: the embedded buildkitd must be started (or restarted).
	NeedsStart
)

func (s State) String() string {
	return [...]string{"not configured", "down", "ready", "needs setup", "needs start"}[s]
}

// Option is one builder kind, as the probes found it.
type Option struct {
	Kind     string
	State    State
	Why      string         // Ready: why this builder and node; otherwise why not
	Failures []string       // per unhealthy candidate: "ENDPOINT: reason"
	Builder  buildx.Builder // Ready and NeedsStart
	// Fallbacks are, for a remote builder of one pool node, the pipeline's
	// other healthy nodes in rendezvous order: where a lost build runs
	// again (RetryPlan).
	Fallbacks []string
}

// Targets lists what to probe for spec: each wanted kind's targets (the
// remote nodes, the embedded socket), then the host's docker daemon when
// there is one (whether it is up decides default-load), each once.
func Targets(spec Spec) []cloud.ProbeTarget {
	var ts []cloud.ProbeTarget
	seen := map[string]bool{}
	add := func(t cloud.ProbeTarget) {
		if !seen[t.Key()] {
			seen[t.Key()] = true
			ts = append(ts, t)
		}
	}
	for _, name := range kindNames {
		// The engine is probed whatever the order: whether it is up
		// decides default-load.
		if slices.Contains(spec.Order, name) || name == config.BuilderLocal {
			for _, t := range kinds[name].targets(spec) {
				add(t)
			}
		}
	}
	return ts
}

// AllEndpoints lists the pool's endpoints: the default ones, then each
// platform's, every one once.
func (r RemoteSpec) AllEndpoints() []string {
	eps := slices.Clone(r.Endpoints)
	for _, p := range r.Platforms {
		for _, ep := range p.Endpoints {
			if !slices.Contains(eps, ep) {
				eps = append(eps, ep)
			}
		}
	}
	return eps
}

// remoteTarget is the probe of one remote endpoint: TLS applies to tcp://.
func remoteTarget(r RemoteSpec, ep string) cloud.ProbeTarget {
	t := cloud.ProbeTarget{Kind: cloud.ProbeBuildkit, Endpoint: ep}
	if strings.HasPrefix(ep, "tcp://") {
		t.TLS = r.TLS
	}
	return t
}

// Results are probe results by target key.
type Results map[string]cloud.ProbeResult

// Of returns the result for t; a target that was not probed is down.
func (rs Results) Of(t cloud.ProbeTarget) cloud.ProbeResult {
	if r, ok := rs[t.Key()]; ok {
		return r
	}
	return cloud.ProbeResult{Kind: t.Kind, Endpoint: t.Endpoint, Error: "not probed"}
}

// DockerUp reports whether the host's docker engine answered its probe.
func (spec Spec) DockerUp(results Results) bool {
	return spec.Local.DockerHost != "" && results.Of(cloud.ProbeTarget{Kind: cloud.ProbeDocker, Endpoint: spec.Local.DockerHost}).OK
}

// Plan says, for each kind of spec.Order in that order, whether and how it
// can be used given the probe results. It is pure: the side effects (nsc,
// starting buildkitd, writing files) are the caller's, who takes the first
// option that is Ready or whose setup succeeds.
func Plan(spec Spec, results Results) []Option {
	dockerUp := spec.DockerUp(results)
	var opts []Option
	for _, name := range spec.Order {
		k, ok := kinds[name]
		if !ok {
			opts = append(opts, Option{Kind: name, State: NotConfigured, Why: "unknown builder kind"})
			continue
		}
		opts = append(opts, k.plan(spec, results, dockerUp))
	}
	return opts
}

func (remoteKind) plan(spec Spec, results Results, dockerUp bool) Option {
	r := spec.Remote
	o := Option{Kind: config.BuilderRemote}
	if len(r.Undiscovered) > 0 && len(r.AllEndpoints()) == 0 {
		o.State = Down
		o.Why = "discovery found no node (" + strings.Join(r.Undiscovered, ", ") + ")"
		return o
	}
	if len(r.Endpoints) == 0 && len(r.Platforms) == 0 {
		o.Why = "no remote.endpoints or [[remote.platform]] configured"
		return o
	}
	// pick routes the pipeline to a healthy node of a group: its first in
	// rendezvous order unless that one is over the load bound.
	var poolOrder []string // the default pool's healthy nodes in rendezvous order
	pick := func(eps []string) (string, int, string) {
		var healthy []string
		for _, ep := range eps {
			res := results.Of(remoteTarget(r, ep))
			if res.OK {
				healthy = append(healthy, ep)
			} else if f := ep + ": " + res.Error; !slices.Contains(o.Failures, f) {
				o.Failures = append(o.Failures, f)
			}
		}
		if len(healthy) == 0 {
			return "", 0, ""
		}
		order := Rendezvous(spec.Slug, healthy)
		loads := make([]NodeLoad, len(order))
		for i, ep := range order {
			n, known := results.Of(remoteTarget(r, ep)).Load()
			loads[i] = NodeLoad{Endpoint: ep, Active: n, Known: known}
		}
		route := BoundedRoute(loads, r.BalanceFactor, score(spec.JobID, spec.Slug))
		poolOrder = order
		return route.Endpoint, len(healthy), route.Describe(loads)
	}
	withLoad := func(s, load string) string {
		if load == "" {
			return s + ")"
		}
		return s + "; " + load + ")"
	}
	node := func(name, ep string, platforms []string) buildx.Node {
		n := buildx.Node{Name: name, Endpoint: ep, Platforms: platforms}
		if strings.HasPrefix(ep, "tcp://") {
			n.TLS = r.TLS
		}
		return n
	}
	b := buildx.Builder{Kind: config.BuilderRemote, Name: buildx.RemoteName, Driver: buildx.DriverRemote}
	var why, missing []string
	if len(r.Endpoints) > 0 {
		if ep, n, load := pick(r.Endpoints); ep != "" {
			b.Nodes = append(b.Nodes, node(buildx.RemoteName+"0", ep, nil))
			o.Fallbacks = slices.DeleteFunc(slices.Clone(poolOrder), func(e string) bool { return e == ep })
			why = append(why, withLoad(fmt.Sprintf("pipeline %q → %s (rendezvous over %d of %d healthy", spec.Slug, ep, n, len(r.Endpoints)), load))
		} else {
			missing = append(missing, "remote.endpoints")
		}
	}
	var platformNodes []buildx.Node
	for _, pn := range r.Platforms {
		if ep, n, load := pick(pn.Endpoints); ep != "" {
			platformNodes = append(platformNodes, node(buildx.RemoteName+"-"+strings.ReplaceAll(pn.Platform, "/", "-"), ep, []string{pn.Platform}))
			why = append(why, withLoad(fmt.Sprintf("%s → %s (%d of %d healthy", pn.Platform, ep, n, len(pn.Endpoints)), load))
		} else {
			missing = append(missing, pn.Platform)
		}
	}
	if len(b.Nodes) == 0 {
		// No pool node: the host's platform goes first, as buildx builds on
		// the first node when no --platform is given.
		buildx.HostFirst(platformNodes, spec.HostPlatform)
	}
	b.Nodes = append(b.Nodes, platformNodes...)
	if len(b.Nodes) == 0 {
		o.State = Down
		o.Why = "no healthy node"
		return o
	}
	if len(b.Nodes) != 1 {
		o.Fallbacks = nil // a multi-platform builder is not run again elsewhere
	}
	b.DefaultLoad = dockerUp && buildx.Loadable(b.Nodes)
	o.State, o.Builder = Ready, b
	o.Why = strings.Join(why, "; ")
	if len(missing) > 0 {
		o.Why += "; no healthy node for " + strings.Join(missing, ", ")
	}
	return o
}

func (namespaceKind) plan(spec Spec, _ Results, _ bool) Option {
	n := spec.Namespace
	o := Option{Kind: config.BuilderNamespace}
	switch {
	case n.NSC == "":
		o.Why = "nsc not found (namespace.nsc or PATH)"
	case n.TenantID == "":
		o.Why = "namespace.tenant_id is not set"
	default:
		o.State = NeedsSetup
		o.Why = fmt.Sprintf("nsc %s, tenant %s, %s auth", n.NSC, n.TenantID, n.Auth)
	}
	return o
}

func (localKind) plan(spec Spec, results Results, _ bool) Option {
	l := spec.Local
	o := Option{Kind: config.BuilderLocal}
	if l.DockerHost == "" {
		o.Why = "no docker daemon on this host (DOCKER_HOST or /var/run/docker.sock)"
		return o
	}
	res := results.Of(cloud.ProbeTarget{Kind: cloud.ProbeDocker, Endpoint: l.DockerHost})
	if !res.OK {
		o.State = Down
		o.Failures = []string{l.DockerHost + ": " + res.Error}
		o.Why = "the docker daemon does not answer"
		if strings.HasPrefix(res.Error, cloud.SocketDenied) {
			o.Why = "this user may not use the docker daemon's socket"
		}
		return o
	}
	// The engine's own builder, exactly what the job gets without dockhand:
	// images built earlier in the step are usable as FROM, results land in
	// the engine, nothing is pulled. On the classic image store it cannot
	// export cache, so the shim only adds --cache-from (on the containerd
	// store it writes registry and local cache too); a docker-container
	// builder could export but would lose the first two and pull its image
	// (docs/cache.md, "The local builder").
	o.State = Ready
	o.Builder = buildx.Builder{Kind: config.BuilderLocal, Name: "default", Driver: buildx.DriverDocker, Nodes: []buildx.Node{{Name: "default", Endpoint: l.DockerHost}}}
	o.Why = fmt.Sprintf("the host's docker daemon (%s), its own builder", l.DockerHost)
	return o
}

func (embeddedKind) plan(spec Spec, results Results, dockerUp bool) Option {
	e := spec.Embedded
	o := Option{Kind: config.BuilderEmbedded}
	if e.Socket == "" {
		o.Why = "no state dir for its socket"
		return o
	}
	o.Builder = buildx.Builder{Kind: config.BuilderEmbedded, Name: buildx.EmbeddedName, Driver: buildx.DriverRemote, DefaultLoad: dockerUp,
		Nodes: []buildx.Node{{Name: buildx.EmbeddedName + "0", Endpoint: e.Socket}}}
	res := results.Of(cloud.ProbeTarget{Kind: cloud.ProbeBuildkit, Endpoint: e.Socket})
	switch {
	case res.OK:
		o.State = Ready
		o.Why = "the host's shared buildkitd at " + e.Socket
	case e.Buildkitd == "":
		o.State = Down
		o.Failures = []string{e.Socket + ": " + res.Error}
		o.Why = "not running, and no buildkitd to start (embedded.buildkitd or PATH)"
	case e.Rootless != nil && e.Rootless.Problem != "":
		// One line with the cause and its fix; the next kind is taken.
		o.State = Down
		o.Why = "not running, and " + e.Rootless.Problem
	case e.Rootless != nil:
		o.State = NeedsStart
		o.Failures = []string{e.Socket + ": " + res.Error}
		o.Why = "not running; starting " + e.Buildkitd + " rootless under " + e.Rootless.Rootlesskit
	default:
		o.State = NeedsStart
		o.Failures = []string{e.Socket + ": " + res.Error}
		o.Why = "not running; starting " + e.Buildkitd
	}
	return o
}

// Configured reports whether any option has something configured, that is
// whether "no builder" means "all down" rather than "none wanted".
func Configured(opts []Option) bool {
	return slices.ContainsFunc(opts, func(o Option) bool { return o.State != NotConfigured })
}

// NoBuilderError is the failure of every configured builder kind.
type NoBuilderError struct {
	Options []Option
	Setup   map[string]string // kind -> why its setup or start failed
}

// Error is one line naming each candidate and why it cannot be used.
func (e *NoBuilderError) Error() string {
	var parts []string
	for _, o := range e.Options {
		if o.State == NotConfigured {
			continue
		}
		why := o.Why
		if s := e.Setup[o.Kind]; s != "" {
			why = s
		} else if len(o.Failures) > 0 {
			why = strings.Join(o.Failures, ", ")
		}
		parts = append(parts, o.Kind+": "+why)
	}
	return "no builder available: " + strings.Join(parts, "; ")
}
