package main

import (
	"context"
	"time"

	"github.com/dockhand-ci/dockhand/builder/buildkit"
	"github.com/dockhand-ci/dockhand/cloud"
)

// maxProbeWait bounds a request without a deadline, or with a far one.
const maxProbeWait = 2 * time.Minute

// probeCommand is `dockhand-cloud probe`: a cloud.ProbeRequest as JSON on
// stdin, a cloud.ProbeResponse as JSON on stdout.
var probeCommand = jsonCommand(func(ctx context.Context, req cloud.ProbeRequest) (cloud.ProbeResponse, error) {
	if req.Deadline.IsZero() || time.Until(req.Deadline) > maxProbeWait {
		req.Deadline = time.Now().Add(maxProbeWait)
	}
	return cloud.ProbeResponse{Results: buildkit.Run(ctx, req)}, nil
})
