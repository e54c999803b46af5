package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/buildx/probe"
)

// maxProbeWait bounds a request without a deadline, or with a far one.
const maxProbeWait = 2 * time.Minute

// probeCommand is `dockhand-cloud probe`: a buildx.ProbeRequest as JSON on
// stdin, a buildx.ProbeResponse as JSON on stdout.
func probeCommand(args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q (the request comes as JSON on stdin)", args[0])
	}
	var req buildx.ProbeRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return fmt.Errorf("reading the request on stdin: %w", err)
	}
	if req.Deadline.IsZero() || time.Until(req.Deadline) > maxProbeWait {
		req.Deadline = time.Now().Add(maxProbeWait)
	}
	resp := buildx.ProbeResponse{Results: probe.Run(context.Background(), req)}
	return json.NewEncoder(stdout).Encode(resp)
}
