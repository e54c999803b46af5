package probe

import (
	"context"
	"errors"
	"io"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"

	"github.com/dockhand-ci/dockhand/buildx"
)

// History sums the builds each node finished since req.Since, from
// BuildKit's build history: how many, and how many of their steps came from
// the cache. A node that cannot be asked is reported, not fatal.
func History(ctx context.Context, req buildx.HistoryRequest) buildx.HistoryResponse {
	var resp buildx.HistoryResponse
	for _, t := range req.Nodes {
		if err := nodeHistory(ctx, t, req, &resp); err != nil {
			resp.Errors = append(resp.Errors, t.Endpoint+": "+Describe(err))
		}
	}
	return resp
}

func nodeHistory(ctx context.Context, t buildx.ProbeTarget, req buildx.HistoryRequest, resp *buildx.HistoryResponse) error {
	c, err := client.New(ctx, t.Endpoint, clientOpts(t)...)
	if err != nil {
		return err
	}
	defer c.Close()
	stream, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{EarlyExit: true})
	if err != nil {
		return err
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r := ev.GetRecord()
		if ev.GetType() != controlapi.BuildHistoryEventType_COMPLETE || r == nil || r.GetCompletedAt() == nil ||
			r.GetCreatedAt().AsTime().Before(req.Since) {
			continue
		}
		resp.Builds++
		resp.CachedSteps += int(r.GetNumCachedSteps())
		resp.TotalSteps += int(r.GetNumTotalSteps())
	}
}
