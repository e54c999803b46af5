package bootstrap

import (
	"context"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

// seedNodeIdentity gives the job's buildx config dir the node identity of
// the job's pipeline and checkout on this host (buildx.NodeScope), so the
// job's context uploads diff against the previous job's. It returns the job
// log line. A failure only costs speed: buildx then makes a per-job identity.
func seedNodeIdentity(ctx context.Context, state, buildxDir string, e *agentenv.Environment) joblog.Line {
	lookup := config.Getter(e)
	scope, ok := buildx.NodeScopeFromEnv(lookup, forkOf(lookup))
	if !ok {
		return joblog.Notef("buildx: per-job node identity (the job names no pipeline): context uploads start from scratch")
	}
	key, err := buildx.HostNodeKey(ctx, state)
	if err == nil {
		err = buildx.SeedNodeID(buildxDir, buildx.NodeID(key, scope))
	}
	if err != nil {
		return joblog.Warningf("buildx node identity: %v (context uploads start from scratch)", err)
	}
	where := "pipeline"
	if scope.Checkout != "" {
		where += " and checkout"
	}
	if scope.Fork != "" {
		where += " and fork " + scope.Fork
	}
	return joblog.Notef("buildx: node identity kept per %s on this host: context uploads send only what changed", where)
}

// forkOf is the normalised repository of the job's pull request when it
// comes from a fork, as the cache-key policy decides it; "" otherwise.
func forkOf(lookup func(string) string) string {
	if id := cachekey.IdentityFromEnv(lookup); id.IsFork() {
		return cachekey.NormalizeRepo(id.PullRequestRepo)
	}
	return ""
}
