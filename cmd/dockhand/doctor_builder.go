package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/builder/doctor"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// diagnoseBuilder is the builder a job on this host and queue would get now,
// probed through dockhand-cloud, with nothing started or written. The
// embedded buildkitd is looked for in the state dir jobs use, fallback
// included.
func diagnoseBuilder(ctx context.Context, cfg *config.Config, e *agentenv.Environment) doctor.Diagnosis {
	return doctor.Diagnose(ctx, cfg, e, tokenStateDir("", cfg, e), self(), localBuildctlVersion(e))
}

// localBuildctlVersion is the version of the buildctl jobs would run ("" if
// there is none on PATH).
func localBuildctlVersion(e *agentenv.Environment) string {
	path, _ := e.Get("PATH")
	p, err := proc.LookPath("buildctl", path)
	if err != nil {
		return ""
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil {
		return ""
	}
	return doctor.ParseBuildctlVersion(string(out))
}

// writeBuilder prints the builder section of `dockhand doctor`.
func writeBuilder(w io.Writer, d doctor.Diagnosis) {
	fmt.Fprintln(w, "\n# builder")
	for _, l := range d.Lines() {
		fmt.Fprintf(w, "# %s\n", l)
	}
}

// withField adds one top-level field to doctor's JSON object.
func withField(objJSON []byte, key string, value any) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(objJSON, &obj); err != nil {
		return nil, err
	}
	b, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[key] = b
	return json.Marshal(obj)
}
