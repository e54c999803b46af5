package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// embeddedRig is a rig whose jobs use dockhand's embedded builder (stopped
// when the test ends), which reaches the kit's plain-HTTP registry; extra
// is appended to the configuration.
func embeddedRig(t *testing.T, kit *harness.Env, extra string) *rig {
	t.Helper()
	r := newRig(t)
	r.shortState()
	bkConfig := filepath.Join(r.tempDir(), "buildkitd.toml")
	writeFile(t, bkConfig, fmt.Sprintf("[registry.%q]\n  http = true\n", kit.Registry.Host))
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"embedded\"]\n[embedded]\nconfig = %q\n%s", r.state, bkConfig, extra))
	return r
}

var cacheSummaryLine = regexp.MustCompile(`dockhand: cache: (\d+) build\(s\) on dockhand-embedded during this job: BuildKit marked (\d+) of (\d+) steps CACHED`)

// TestJobEndsWithACacheSummary: after the job, dockhand's last line says how
// many steps of the job's builds on its builder came from the cache (from
// BuildKit's build history): few on the first build, more on the same build
// again; a job that builds nothing gets no line.
func TestJobEndsWithACacheSummary(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	r := embeddedRig(t, kit, "[cache]\nmode = \"off\"\n")
	command := fmt.Sprintf(`printf 'FROM %s\nRUN echo one > /one\nRUN echo two > /two\n' > Dockerfile
docker buildx build --progress plain .`, kit.BaseImage)

	summary := func(command string) []string {
		t.Helper()
		id, agent := r.start(command, nil)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" {
			t.Fatalf("job: %+v\n%s", f, log)
		}
		return cacheSummaryLine.FindStringSubmatch(log)
	}
	first := summary(command)
	if first == nil || first[1] != "1" {
		t.Fatalf("first job: summary %q, want one build", first)
	}
	second := summary(command)
	if second == nil || second[1] != "1" {
		t.Fatalf("second job: summary %q, want one build", second)
	}
	t.Logf("first job: %s\nsecond job: %s", first[0], second[0])
	c1, _ := strconv.Atoi(first[2])
	c2, _ := strconv.Atoi(second[2])
	total2, _ := strconv.Atoi(second[3])
	if c2 <= c1 || c2 < 2 || c2 > total2 {
		t.Errorf("cached steps: first job %s, second job %s of %d; want the rebuild's RUN steps cached", first[2], second[2], total2)
	}
	if none := summary("echo no build here"); none != nil {
		t.Errorf("a job that built nothing got a summary: %q", none)
	}
}
