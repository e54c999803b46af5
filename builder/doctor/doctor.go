// Package doctor is the builder half of `dockhand doctor`: the choice a job
// would make now on this host and queue (builder.TakeSurvey), what an
// operator should fix, as text and as JSON.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/builder/namespace"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

// Diagnosis is what `dockhand doctor` shows about builders: the choice a
// job would make now on this host and queue, without its side effects (nsc
// is not run, the embedded buildkitd is not started, nothing is written).
type Diagnosis struct {
	builder.Survey
	Chosen   int // index in Options; -1 when none
	Warnings []string
	// NamespaceToken is the state of the tenant token the host's jobs share
	// ("" when the queue does not use Namespace).
	NamespaceToken string
}

// Diagnose probes (fresh, sharing nothing) and plans. stateDir is the state
// dir jobs on this host use (the configured one or its fallback), where the
// embedded buildkitd's socket is. buildctlVersion is the local buildctl's
// version ("" when there is none), compared with the builders'. ctx ends
// its discovery and probes early.
func Diagnose(ctx context.Context, cfg *config.Config, e *agentenv.Environment, stateDir, self, buildctlVersion string) Diagnosis {
	d := Diagnosis{Survey: builder.TakeSurvey(ctx, cfg, e, stateDir, self)}
	d.Chosen = builder.FirstUsable(d.Options)
	d.Warnings = Warnings(d.Spec, d.Probes.Results, buildctlVersion)
	if d.Chosen >= 0 && d.Options[d.Chosen].State == builder.Ready {
		d.Warnings = append(d.Warnings, d.NodeWarnings(d.Options[d.Chosen].Builder)...)
	}
	if slices.Contains(d.Spec.Order, config.BuilderNamespace) && d.Spec.Namespace.TenantID != "" && stateDir != "" {
		d.NamespaceToken = namespace.TokenState(namespace.HostTenantTokens(stateDir), d.Spec.Namespace.TenantID)
	}
	return d
}

// Warnings are the builder settings an operator should fix: plaintext
// tcp:// endpoints (anyone who reaches them controls the builder and reads
// every cache) and a local buildctl whose version differs from a builder's.
func Warnings(spec builder.Spec, results []cloud.ProbeResult, buildctlVersion string) []string {
	var w []string
	if slices.Contains(spec.Order, config.BuilderRemote) && !spec.Remote.TLS.Enabled() {
		for _, ep := range spec.Remote.AllEndpoints() {
			if strings.HasPrefix(ep, "tcp://") {
				w = append(w, fmt.Sprintf("remote endpoint %s is plaintext tcp://: anyone who reaches it controls the builder and reads its cache; set remote.ca, remote.cert and remote.key (dockhand certs makes them)", ep))
			}
		}
	}
	if buildctlVersion != "" {
		seen := map[string]bool{}
		for _, r := range results {
			if r.Kind != cloud.ProbeBuildkit || !r.OK || r.Version == "" || r.Version == buildctlVersion || seen[r.Version] {
				continue
			}
			seen[r.Version] = true
			w = append(w, fmt.Sprintf("buildctl here is %s but the builder at %s runs BuildKit %s: jobs using buildctl may hit protocol or feature errors", buildctlVersion, r.Endpoint, r.Version))
		}
	}
	return w
}

// ParseBuildctlVersion takes the version from `buildctl --version` output
// ("buildctl github.com/moby/buildkit v0.34.2 8f16ac0...").
func ParseBuildctlVersion(out string) string {
	f := strings.Fields(out)
	if len(f) >= 3 && f[0] == "buildctl" {
		return f[2]
	}
	return ""
}

// Lines describe the diagnosis as text.
func (d Diagnosis) Lines() []joblog.Line {
	var lines []joblog.Line
	note := func(texts ...string) {
		for _, t := range texts {
			lines = append(lines, joblog.Line{Text: t})
		}
	}
	if d.Chosen >= 0 {
		o := d.Options[d.Chosen]
		switch o.State {
		case builder.NeedsSetup:
			note(fmt.Sprintf("builder: %s (a job runs nsc to set it up): %s", o.Kind, o.Why))
		default:
			note(fmt.Sprintf("builder: %s %q on %s (%s)", o.Kind, o.Builder.Name, strings.Join(o.Builder.Endpoints(), ", "), o.State))
			note("builder: why: " + o.Why)
		}
	} else if builder.Configured(d.Options) {
		note("builder: " + (&builder.NoBuilderError{Options: d.Options}).Error() + " (a job fails with exit 125 unless builders_optional)")
	} else {
		note("builder: none configured for this queue; docker uses its own default builder")
	}
	for i, o := range d.Options {
		if i == d.Chosen || (d.Chosen >= 0 && i > d.Chosen) {
			continue
		}
		note(o.WhyNot())
	}
	note(d.DiscoveryLines()...)
	if d.NamespaceToken != "" {
		note("builder: namespace: " + d.NamespaceToken)
	}
	note(d.ProbeLines()...)
	for _, w := range d.Warnings {
		lines = append(lines, joblog.Line{Severity: joblog.Warning, Text: w})
	}
	return lines
}

// DiagnosisJSON is the `builder` object of `dockhand doctor --json`.
type DiagnosisJSON struct {
	Kind      string       `json:"kind"` // "" when none
	Name      string       `json:"name,omitempty"`
	State     string       `json:"state,omitempty"`
	Endpoints []string     `json:"endpoints"`
	Reason    string       `json:"reason"`
	Options   []OptionJSON `json:"options"`
	Probes    []ProbeJSON  `json:"probes"`
	Warnings  []string     `json:"warnings"`
	// Discovery is one line per discovery source of the remote pool.
	Discovery []string `json:"discovery,omitempty"`
	// NamespaceToken is the host's shared Namespace tenant token's state.
	NamespaceToken string `json:"namespace_token,omitempty"`
}

// OptionJSON is one builder kind in DiagnosisJSON.
type OptionJSON struct {
	Kind     string   `json:"kind"`
	State    string   `json:"state"`
	Why      string   `json:"why"`
	Failures []string `json:"failures,omitempty"`
}

// ProbeJSON is one probe in DiagnosisJSON.
type ProbeJSON struct {
	Kind      string   `json:"kind"` // remote, embedded or local
	Endpoint  string   `json:"endpoint"`
	OK        bool     `json:"ok"`
	LatencyMS float64  `json:"latency_ms"`
	Version   string   `json:"version,omitempty"`
	Platforms []string `json:"platforms,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// JSON renders the diagnosis; lists are never null.
func (d Diagnosis) JSON() DiagnosisJSON {
	j := DiagnosisJSON{Endpoints: []string{}, Options: []OptionJSON{}, Probes: []ProbeJSON{}, Warnings: []string{}}
	if d.Chosen >= 0 {
		o := d.Options[d.Chosen]
		j.Kind, j.State, j.Reason = o.Kind, o.State.String(), o.Why
		if o.State != builder.NeedsSetup {
			j.Name, j.Endpoints = o.Builder.Name, o.Builder.Endpoints()
		}
	} else if builder.Configured(d.Options) {
		j.Reason = (&builder.NoBuilderError{Options: d.Options}).Error()
	} else {
		j.Reason = "none configured"
	}
	for _, o := range d.Options {
		j.Options = append(j.Options, OptionJSON{Kind: o.Kind, State: o.State.String(), Why: o.Why, Failures: o.Failures})
	}
	for i, t := range d.Targets {
		r := d.Probes.Results[i]
		j.Probes = append(j.Probes, ProbeJSON{Kind: d.Spec.KindOf(t), Endpoint: t.Endpoint, OK: r.OK,
			LatencyMS: float64(r.Latency) / float64(time.Millisecond), Version: r.Version, Platforms: r.Platforms, Error: r.Error})
	}
	j.Warnings = append(j.Warnings, d.Warnings...)
	for _, m := range d.Discovery {
		j.Discovery = append(j.Discovery, m.Line())
	}
	j.NamespaceToken = d.NamespaceToken
	return j
}
