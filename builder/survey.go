package builder

import (
	"context"
	"fmt"
	"slices"
	"strings"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/fleet"
)

// Survey is what a builder choice knows before it acts: the spec (with a
// changing pool's members discovered), the probe targets, what the probes
// found and the plan made of it. Select acts on it for a job (sets up,
// starts, writes); `dockhand doctor` only shows it (buildx/doctor).
type Survey struct {
	Spec      Spec
	Targets   []cloud.ProbeTarget
	Probes    ProbeReport
	Options   []Option
	Discovery []fleet.Membership
}

// newSurvey makes the spec and its probe targets, asking a changing pool's
// sources for its members. shareDir is the state dir whose discovery results
// the host's jobs share ("" asks afresh and shares nothing).
func newSurvey(ctx context.Context, cfg *config.Config, e *agentenv.Environment, stateDir, shareDir, self, dockerSocket string) Survey {
	spec := SpecFor(cfg, e, stateDir, dockerSocket)
	var discovery []fleet.Membership
	if slices.Contains(spec.Order, config.BuilderRemote) {
		spec.Remote, discovery = Discover(ctx, NewDiscoverer(cfg, e, shareDir, self), spec.Remote)
	}
	return Survey{Spec: spec, Targets: Targets(spec), Discovery: discovery}
}

// probe probes the targets with p and plans: the one probe → plan step of
// both a job's choice and doctor's. It returns the results by target.
func (s *Survey) probe(ctx context.Context, p *Prober) Results {
	s.Probes = p.Probe(ctx, s.Targets)
	results := Results{}
	for i, t := range s.Targets {
		results[t.Key()] = s.Probes.Results[i]
	}
	s.Options = Plan(s.Spec, results)
	return results
}

// TakeSurvey discovers, probes and plans afresh, sharing nothing with the
// host's jobs and starting nothing: what `dockhand doctor` shows. stateDir
// is the state dir jobs on this host use, where the embedded buildkitd's
// socket is. ctx ends its discovery and probes early.
func TakeSurvey(ctx context.Context, cfg *config.Config, e *agentenv.Environment, stateDir, self string) Survey {
	s := newSurvey(ctx, cfg, e, stateDir, "", self, "")
	s.probe(ctx, NewProber(cfg, e, "", self))
	return s
}

// FirstUsable is the index of the first option a job would take, when no
// setup or start fails; -1 when none.
func FirstUsable(opts []Option) int {
	for i, o := range opts {
		if o.State == Ready || o.State == NeedsSetup || o.State == NeedsStart {
			return i
		}
	}
	return -1
}

// NodeWarnings are what the probes say about b's nodes' BuildKit versions
// (see VersionWarnings).
func (s *Survey) NodeWarnings(b buildx.Builder) []string {
	return VersionWarnings(b, resultsByEndpoint(s.Probes.Results))
}

// WhyNot says why o was passed over, with each candidate's failure.
func (o Option) WhyNot() string {
	why := o.Why
	if len(o.Failures) > 0 {
		why += " (" + strings.Join(o.Failures, ", ") + ")"
	}
	return fmt.Sprintf("builder: not %s: %s", o.Kind, why)
}

// DiscoveryLines are the pool's memberships, one line a source.
func (s *Survey) DiscoveryLines() []string {
	var out []string
	for _, m := range s.Discovery {
		out = append(out, "builder: "+m.Line())
	}
	return out
}

// ProbeLines are the probes, one line a target with its outcome and timing.
func (s *Survey) ProbeLines() []string {
	var out []string
	for i, t := range s.Targets {
		out = append(out, fmt.Sprintf("builder: probe %s %s: %s", s.Spec.KindOf(t), t.Endpoint, s.Probes.Results[i].Summary()))
	}
	return out
}
