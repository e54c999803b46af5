package main

import (
	"context"
	"errors"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/jobstate"
	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/shim"
)

// buildxShim runs as the job's docker-buildx: it reads what the bootstrap
// recorded for the job (one small JSON file) and hands over to shim.Shim,
// which execs the real plugin. docker's metadata call reads nothing.
func buildxShim(ctx context.Context, args []string, e *agentenv.Environment, io stdio) error {
	var job *jobstate.State
	if len(args) == 0 || args[0] != shim.MetadataCommand {
		if dir, _ := e.Get(registry.JobDirVar); dir != "" {
			st, err := jobstate.Read(dir)
			if err != nil {
				log := joblog.New(io.err)
				log.Printf("cache not injected: %v", err)
				settings, warnings := config.BuildSettings{}.WithOverrides(config.Getter(e))
				for _, w := range warnings {
					log.Warnf("%s", w)
				}
				if settings.Strict {
					return childExit{1}
				}
			} else {
				job = &st
			}
		}
	}
	err := shim.Shim(ctx, args, e.ToSlice(), self(), job, io.err)
	var exit shim.ExitError
	switch {
	case errors.Is(err, shim.ErrStrict):
		return childExit{1} // the shim said why
	case errors.As(err, &exit):
		return childExit{exit.Code} // the real plugin's, run as a child
	}
	return err
}
