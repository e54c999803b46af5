package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestBootstrapSetupFailureIs125: when dockhand cannot set the job up (here:
// no buildkite-agent to run), it exits 125 — which the agent reports as a
// retryable -1 — with one clear line, and leaves no job dir behind.
func TestBootstrapSetupFailureIs125(t *testing.T) {
	t.Parallel()
	bin := harness.DockhandBin(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	config := filepath.Join(dir, "dockhand.toml")
	writeFile(t, config, fmt.Sprintf("state_dir = %q\n", state))
	env := []string{"PATH=" + filepath.Join(dir, "empty"), "HOME=" + dir, "BUILDKITE_JOB_ID=setup-fails",
		"BUILDKITE_BIN_PATH=" + filepath.Join(dir, "nowhere")}
	r := runShell(t, []string{bin, "bootstrap", "--config", config}, dir, "", env)
	if r.code != 125 {
		t.Fatalf("exit code = %d, want 125 (stdout %q, stderr %q)", r.code, r.stdout, r.stderr)
	}
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "buildkite-agent not found") {
		t.Errorf("stderr = %q, want one line saying buildkite-agent was not found", r.stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(state, "jobs"))
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("job dir left after a failed setup: %s", e.Name())
		}
	}
}
