package builder

import (
	"context"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
)

// HistoryTargets are the BuildKit endpoints of b's nodes ("" for a builder
// that is the host daemon's own, whose history dockhand does not read).
func HistoryTargets(b buildx.Builder) []cloud.ProbeTarget {
	if b.Driver != buildx.DriverRemote {
		return nil
	}
	targets := make([]cloud.ProbeTarget, 0, len(b.Nodes))
	for _, n := range b.Nodes {
		targets = append(targets, cloud.ProbeTarget{Kind: cloud.ProbeBuildkit, Endpoint: n.Endpoint, TLS: n.TLS})
	}
	return targets
}

// BuildHistory runs `dockhand-cloud history` for b, bounded by ctx.
func BuildHistory(ctx context.Context, cloudPath string, env []string, b buildx.Builder, since time.Time) (cloud.HistoryResponse, error) {
	var resp cloud.HistoryResponse
	err := cloud.Run(ctx, cloudPath, env, cloud.History, cloud.HistoryRequest{Nodes: HistoryTargets(b), Since: since}, &resp)
	return resp, err
}
