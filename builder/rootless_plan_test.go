package builder

import (
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/config"
)

// TestRootlessProblemIsOneLineAndTheNextKind: what the job log shows when the
// embedded kind cannot start rootless: one line, cause and fix, and the next
// kind (the engine's builder) is taken. (embedded.TestCheckRootless checks
// the problems themselves.)
func TestRootlessProblemIsOneLineAndTheNextKind(t *testing.T) {
	r := embedded.Rootless{User: "buildkite-agent", Problem: "rootless buildkitd needs newuidmap: newuidmap is not on PATH; install the uidmap package (Debian, Ubuntu) or shadow-utils (Amazon Linux)"}
	spec := baseSpec(config.BuilderEmbedded, config.BuilderLocal)
	spec.Embedded.Rootless = &r
	opts := Plan(spec, results([]string{docker}, map[string]string{embSock: "dial unix: no such file or directory"}))
	sel := &Selection{Survey: Survey{Spec: spec, Options: opts}, Chosen: FirstUsable(opts)}
	if sel.Chosen != 1 {
		t.Fatalf("chose %d (%+v), want the local kind after it", sel.Chosen, opts)
	}
	b := opts[1].Builder
	sel.Builder = &b
	var about []string
	for _, l := range sel.Lines() {
		if strings.Contains(l.Text, "embedded") {
			about = append(about, l.Text)
		}
	}
	if len(about) != 1 || !strings.Contains(about[0], "builder: not embedded: ") || !strings.Contains(about[0], "newuidmap is not on PATH; install the uidmap package") {
		t.Fatalf("lines about the embedded kind: %q, want one naming newuidmap and its package", about)
	}
}
