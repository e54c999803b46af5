package main

import (
	"errors"
	"fmt"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/bootstrap"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/registry"
)

// buildxShim runs as the job's docker-buildx: it reads what the bootstrap
// recorded for the job (one small JSON file) and hands over to buildx.Shim,
// which execs the real plugin. docker's metadata call reads nothing.
func buildxShim(args []string, e *agentenv.Environment, io stdio) error {
	var job *buildx.ShimJob
	if len(args) == 0 || args[0] != buildx.MetadataCommand {
		if dir, _ := e.Get(registry.JobDirVar); dir != "" {
			st, err := bootstrap.ReadState(dir)
			if err != nil {
				fmt.Fprintf(io.err, "dockhand: cache not injected: %v\n", err)
				if v, _ := e.Get("DOCKHAND_STRICT"); v != "" {
					if strict, _ := buildx.ParseBool(v); strict {
						return childExit{1}
					}
				}
			} else {
				job = &buildx.ShimJob{Cache: st.Cache}
				if b := st.Builder; b.Kind != "" {
					job.Selected = &buildx.SelectedBuilder{Kind: b.Kind, Name: b.Name, Nodes: b.Nodes}
				}
			}
		}
	}
	err := buildx.Shim(args, e.ToSlice(), self(), job, io.err)
	if errors.Is(err, buildx.ErrStrict) {
		return childExit{1} // the shim said why
	}
	return err
}
