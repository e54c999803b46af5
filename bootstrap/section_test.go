package bootstrap

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/internal/joblog"
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
		cache:      []joblog.Line{joblog.Warningf("cache repository buildkit-cache: AccessDeniedException (cache export may fail; builds run anyway)")},
	}, time.Millisecond)
	lines := strings.Split(log.String(), "\n")
	if lines[0] != "--- :docker: dockhand" || !strings.HasPrefix(lines[1], "dockhand: warning: state dir /var/lib/dockhand not usable") ||
		lines[2] != "^^^ +++" || strings.Count(log.String(), "^^^ +++") != 1 || !strings.Contains(log.String(), "dockhand: warning: cache repository") {
		t.Errorf("want the section expanded once, after its first warning:\n%s", log.String())
	}
}

// TestSetupWarningsReachTheLogAsWarnings: what the builder's set-up hands
// back as a warning (a node's old BuildKit, a route the host's next jobs
// will not count) is printed as one — "dockhand: warning: builder: …" —
// and expands the section once, as a fallback does; its notes stay notes.
// The set-up used to word them "warning: …" inside a note, printed as
// "dockhand: builder: warning: …", and the section stayed collapsed.
func TestSetupWarningsReachTheLogAsWarnings(t *testing.T) {
	old := "builder node tcp://10.0.0.7:1234 runs BuildKit v0.11.6, older than the v0.12.0 dockhand's cache flags need"
	sel := &builder.Selection{Chosen: -1, Notes: []joblog.Line{
		joblog.Notef("namespace: tenant token reused"),
		{Severity: joblog.Warning, Text: old},
		joblog.Warningf("the host's next jobs will not count this one on its node's load: %s", "read-only file system"),
	}}
	var log strings.Builder
	writeSection(&log, "/state/jobs/j1", setupNotes{realBuildx: "/usr/libexec/docker/cli-plugins/docker-buildx", builder: sel}, time.Millisecond)
	lines := strings.Split(log.String(), "\n")
	at := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		return -1
	}
	first := at("dockhand: warning: builder: " + old)
	if first < 0 || lines[first+1] != "^^^ +++" || strings.Count(log.String(), "^^^ +++") != 1 ||
		at("dockhand: warning: builder: the host's next jobs will not count this one on its node's load: read-only file system") < 0 ||
		at("dockhand: builder: namespace: tenant token reused") < 0 || strings.Contains(log.String(), "builder: warning:") {
		t.Errorf("want the set-up's warnings as warnings, the section expanded once after the first:\n%s", log.String())
	}
}
