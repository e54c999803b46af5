package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var setupPhases = regexp.MustCompile(`(?m)^dockhand: debug: setup took [0-9.]+ms: sweep [0-9.]+ms, job dir [0-9.]+ms, ` +
	`docker config [0-9.]+ms, node identity [0-9.]+ms, builder [0-9.]+ms ‖ cache [0-9.]+ms, job state [0-9.]+ms$`)

// TestBootstrapDebugPrintsSetupPhases: with DOCKHAND_DEBUG=1 (set in the
// pipeline, as a step would), the job log's dockhand section gives the
// setup's time per phase; without it, no such line.
func TestBootstrapDebugPrintsSetupPhases(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	config := filepath.Join(dir, "dockhand.toml")
	writeFile(t, config, fmt.Sprintf("state_dir = %q\n", filepath.Join(dir, "state")))
	r := runBootstrap(t, config, "debug-app", "true", "DOCKHAND_DEBUG=1")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Log(setupPhases.FindString(r.stdout))
	if !setupPhases.MatchString(r.stdout) {
		t.Errorf("no setup phases line with DOCKHAND_DEBUG=1:\n%s", section(r.stdout))
	}
	r = runBootstrap(t, config, "debug-app", "true")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "debug: setup took") {
		t.Errorf("setup phases printed without DOCKHAND_DEBUG:\n%s", section(r.stdout))
	}
}
