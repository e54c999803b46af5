package buildx

import (
	"context"
	"fmt"
	"time"
)

// HistoryRequest asks `dockhand-cloud history` for what a builder's nodes
// built since a time.
type HistoryRequest struct {
	Nodes []ProbeTarget `json:"nodes"`
	Since time.Time     `json:"since"`
}

// HistoryResponse is its answer: builds finished, and their steps, cached
// and in all, summed over the nodes.
type HistoryResponse struct {
	Builds      int      `json:"builds"`
	CachedSteps int      `json:"cached_steps"`
	TotalSteps  int      `json:"total_steps"`
	Errors      []string `json:"errors,omitempty"`
}

// HistoryTargets are the BuildKit endpoints of b's nodes ("" for a builder
// that is the host daemon's own, whose history dockhand does not read).
func HistoryTargets(b Builder) []ProbeTarget {
	if b.Driver != DriverRemote {
		return nil
	}
	targets := make([]ProbeTarget, 0, len(b.Nodes))
	for _, n := range b.Nodes {
		targets = append(targets, ProbeTarget{Kind: ProbeBuildkit, Endpoint: n.Endpoint, TLS: n.TLS})
	}
	return targets
}

// BuildHistory runs `dockhand-cloud history` for b, bounded by ctx.
func BuildHistory(ctx context.Context, cloud string, env []string, b Builder, since time.Time) (HistoryResponse, error) {
	var resp HistoryResponse
	err := runCloud(ctx, cloud, env, "history", HistoryRequest{Nodes: HistoryTargets(b), Since: since}, &resp)
	return resp, err
}

// Line is the job log's summary of what the job's builds took from the cache.
func (h HistoryResponse) Line(builder string) string {
	if h.Builds == 0 {
		return fmt.Sprintf("cache: no build finished on %s during this job", builder)
	}
	pct := 0
	if h.TotalSteps > 0 {
		pct = h.CachedSteps * 100 / h.TotalSteps
	}
	return fmt.Sprintf("cache: %d build(s) on %s during this job: BuildKit marked %d of %d steps CACHED (%d%%)",
		h.Builds, builder, h.CachedSteps, h.TotalSteps, pct)
}
