package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
)

func TestSeedNodeIdentity(t *testing.T) {
	state := t.TempDir()
	seed := func(kv ...string) (id, line string) {
		t.Helper()
		dir := t.TempDir()
		line = seedNodeIdentity(t.Context(), state, dir, agentenv.FromSlice(kv)).String()
		b, err := os.ReadFile(filepath.Join(dir, ".buildNodeID"))
		if err == nil {
			fi, _ := os.Stat(filepath.Join(dir, ".buildNodeID"))
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("node id file mode %o, want 600", fi.Mode().Perm())
			}
		}
		return string(b), line
	}
	job := []string{"BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=app", "BUILDKITE_BUILD_PATH=/b", "BUILDKITE_AGENT_NAME=host-1"}
	one, line := seed(job...)
	if len(one) != 32 || !strings.Contains(line, "node identity kept per pipeline and checkout on this host") {
		t.Fatalf("id %q, line %q", one, line)
	}
	if again, _ := seed(job...); again != one {
		t.Errorf("the pipeline's next job on the agent got %q, want %q", again, one)
	}
	for name, kv := range map[string][]string{
		"another pipeline": {"BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=web", "BUILDKITE_BUILD_PATH=/b", "BUILDKITE_AGENT_NAME=host-1"},
		"another agent":    {"BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=app", "BUILDKITE_BUILD_PATH=/b", "BUILDKITE_AGENT_NAME=host-2"},
		"a fork": append(job, "BUILDKITE_REPO=https://github.com/org/app", "BUILDKITE_PULL_REQUEST=7",
			"BUILDKITE_PULL_REQUEST_REPO=https://github.com/someone/app"),
	} {
		if id, _ := seed(kv...); id == one || len(id) != 32 {
			t.Errorf("%s: id %q, want one of its own", name, id)
		}
	}
	if id, line := seed("BUILDKITE_BUILD_PATH=/b"); id != "" || !strings.Contains(line, "per-job node identity") {
		t.Errorf("no pipeline: id %q, line %q; want none (buildx makes its own)", id, line)
	}
}

// TestForkOf: the node identity of a pull request from a fork is the
// fork's own; one from the pipeline's repository shares the pipeline's.
func TestForkOf(t *testing.T) {
	base := map[string]string{"BUILDKITE_REPO": "git@github.com:org/app.git", "BUILDKITE_PULL_REQUEST": "12"}
	for _, tc := range []struct{ name, prRepo, want string }{
		{"not a pull request", "", ""},
		{"pull request from the same repo", "https://github.com/org/app", ""},
		{"fork", "https://github.com/mallory/app.git", "github.com/mallory/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"BUILDKITE_PULL_REQUEST_REPO": tc.prRepo}
			for k, v := range base {
				env[k] = v
			}
			if tc.prRepo == "" {
				env["BUILDKITE_PULL_REQUEST"] = "false"
			}
			if got := forkOf(func(k string) string { return env[k] }); got != tc.want {
				t.Errorf("forkOf = %q, want %q", got, tc.want)
			}
		})
	}
}
