package main

import (
	"bytes"
	"strings"
	"testing"
)

// An unreadable job state costs the build its cache, with one line; with
// DOCKHAND_STRICT=1 the call fails instead of running without it. (The
// paths that exec the real plugin are covered end to end.)
func TestBuildxShimStrictWithoutJobState(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := []string{"DOCKHAND_JOB_DIR=" + t.TempDir() + "/gone", "DOCKHAND_STRICT=1", "DOCKHAND_REAL_BUILDX=/nonexistent/docker-buildx",
		"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker"}
	code := run([]string{"/job/docker/cli-plugins/docker-buildx", "buildx", "build", "."}, env, stdio{out: &stdout, err: &stderr})
	if code != 1 || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q; want 1 and nothing on stdout", code, stdout.String())
	}
	if got := stderr.String(); !strings.HasPrefix(got, "dockhand: cache not injected: reading the job state") || strings.Count(got, "\n") != 1 {
		t.Errorf("stderr = %q, want one cache-not-injected line", got)
	}
}
