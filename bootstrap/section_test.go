package bootstrap

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestSectionExpandsOnAWarning: the dockhand section opens collapsed; a
// state-dir fallback or a denied cache repository (each a warning) expands
// it once, right after the first, as the agent's own warnings do ("^^^
// +++"); a section without warnings stays collapsed.
func TestSectionExpandsOnAWarning(t *testing.T) {
	var quiet strings.Builder
	writeSection(&quiet, "/state/jobs/j1", setupNotes{realBuildx: "/usr/libexec/docker/cli-plugins/docker-buildx"}, time.Millisecond)
	if !strings.HasPrefix(quiet.String(), "--- :docker: dockhand\n") || strings.Contains(quiet.String(), "^^^") {
		t.Errorf("a section without warnings:\n%s", quiet.String())
	}

	var log strings.Builder
	writeSection(&log, "/tmp/dockhand-0/jobs/j1", setupNotes{
		wanted: "/var/lib/dockhand", stateDir: "/tmp/dockhand-0", fellBack: errors.New("no space left on device"),
		realBuildx: "/usr/libexec/docker/cli-plugins/docker-buildx",
		cache:      []string{"warning: cache repository buildkit-cache: AccessDeniedException (cache export may fail; builds run anyway)"},
	}, time.Millisecond)
	lines := strings.Split(log.String(), "\n")
	if lines[0] != "--- :docker: dockhand" || !strings.HasPrefix(lines[1], "dockhand: warning: state dir /var/lib/dockhand not usable") ||
		lines[2] != "^^^ +++" || strings.Count(log.String(), "^^^ +++") != 1 || !strings.Contains(log.String(), "dockhand: warning: cache repository") {
		t.Errorf("want the section expanded once, after its first warning:\n%s", log.String())
	}
}
