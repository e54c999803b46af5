package e2e

import (
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestStackAgentRunsTheJob: with the Elastic CI Stack's agent (3.137.0), the
// job's own `buildkite-agent`, and under dockhand the bootstrap dockhand runs
// as its child, are that agent, not the kit's newer one beside it.
func TestStackAgentRunsTheJob(t *testing.T) {
	r := newRig(t)
	r.useVersions(harness.Versions{Agent: harness.Stack.Agent})
	// The step prints its own agent's version and that of every agent
	// process above it: the bootstrap (dockhand's child one, under
	// dockhand) and the agent that started the job.
	command := `buildkite-agent --version | sed "s/^/$O/"
pid=$$
while [ "$pid" -gt 1 ]; do
  exe=$(readlink /proc/$pid/exe || true)
  case $exe in */buildkite-agent) echo "${O}above the step: $("$exe" --version)";; esac
  pid=$(awk '{print $4}' /proc/$pid/stat)
done`
	for _, plain := range []bool{true, false} {
		run := r.runCorpus(corpusRow{command: command}, plain, map[string]string{"O": "out: "})
		want := "buildkite-agent version " + harness.Stack.Agent + "+"
		if run.status != "0" || len(run.out) < 3 {
			t.Fatalf("plain %v: exit %s, lines %q\n%s", plain, run.status, run.out, run.log)
		}
		for _, l := range run.out {
			if !strings.Contains(l, want) {
				t.Errorf("plain %v: %q, want every line from %s", plain, l, want)
			}
		}
	}
}
