package builder

import (
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/jobstate"
)

// NewRetryPlan is the job's retry plan for sel, nil when a lost build
// cannot run again (not a one-node remote builder, no other healthy node).
// probeCache is the host's probe cache dir ("" when none).
func NewRetryPlan(sel *Selection, cfg *config.Config, probeCache string) *jobstate.RetryPlan {
	if sel == nil || sel.Builder == nil || sel.Builder.Kind != config.BuilderRemote || sel.Chosen < 0 || sel.Chosen >= len(sel.Options) {
		return nil
	}
	o := sel.Options[sel.Chosen]
	if len(o.Fallbacks) == 0 || len(sel.Builder.Nodes) != 1 {
		return nil
	}
	return &jobstate.RetryPlan{
		Endpoint: sel.Builder.Endpoint(), Fallbacks: o.Fallbacks, TLS: sel.Spec.Remote.TLS,
		On: cfg.Remote.RetryLostBuilds, ProbeCache: probeCache, ProbeTTL: cfg.ProbeCacheTTL,
	}
}
