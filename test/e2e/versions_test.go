package e2e

import (
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestStackVersionsRunTheJob: with the Elastic CI Stack's versions
// (harness.Stack), plain and under dockhand, the job's own
// `buildkite-agent`, the agents above the step (the bootstrap, dockhand's
// child one under dockhand, and the agent that took the job), `docker buildx`
// (through the shim under dockhand) and `docker compose` are the stack's, not
// the kit's newer ones beside them.
func TestStackVersionsRunTheJob(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.useVersions(harness.Stack)
	command := `buildkite-agent --version | sed "s/^/$O/"
pid=$$
while [ "$pid" -gt 1 ]; do
  exe=$(readlink /proc/$pid/exe || true)
  case $exe in */buildkite-agent) echo "${O}above the step: $("$exe" --version)";; esac
  pid=$(awk '{print $4}' /proc/$pid/stat)
done
docker buildx version | sed "s/^/$O/"
docker compose version | sed "s/^/$O/"`
	for _, plain := range []bool{true, false} {
		run := r.runCorpus(corpusRow{command: command}, plain, map[string]string{"O": "out: "})
		if run.status != "0" || len(run.out) != 5 {
			t.Fatalf("plain %v: exit %s, lines %q, want 3 agents, buildx and compose\n%s", plain, run.status, run.out, run.log)
		}
		want := []string{"buildkite-agent version " + harness.Stack.Agent + "+", "buildkite-agent version " + harness.Stack.Agent + "+",
			"buildkite-agent version " + harness.Stack.Agent + "+", "github.com/docker/buildx v" + harness.Stack.Buildx,
			"Docker Compose version v" + harness.Stack.Compose}
		for i, l := range run.out {
			if !strings.Contains(l, want[i]) {
				t.Errorf("plain %v: line %d %q, want %q in it", plain, i, l, want[i])
			}
		}
	}
}
