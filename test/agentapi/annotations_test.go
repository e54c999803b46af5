package agentapi

import (
	"net/http"
	"strings"
	"testing"
)

// TestAnnotationsFromTheRealAgent: `buildkite-agent annotate` creates,
// appends to and restyles an annotation by context, and `buildkite-agent
// annotation remove` deletes one; when the API refuses, the agent's command
// fails and says why.
func TestAnnotationsFromTheRealAgent(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := addJob(s, `set -e
buildkite-agent annotate --context report --style info "first"
buildkite-agent annotate --context report --append " second"
printf 'from stdin' | buildkite-agent annotate --context gone --style warning
buildkite-agent annotation remove --context gone
buildkite-agent annotate --context other "x"
buildkite-agent annotate --context other --style error`)
	f, log, _ := runJob(t, s, id)
	if f.ExitStatus != "0" {
		t.Fatalf("job: %s\n%s", f.Raw, Plain(log))
	}
	got := s.Annotations(id)
	if len(got) != 2 {
		t.Fatalf("annotations %+v, want report and other", got)
	}
	if a := got[1]; a.Context != "report" || a.Body != "first second" || a.Style != "info" || a.Job != id {
		t.Errorf("appended annotation %+v, want body %q style info", a, "first second")
	}
	if a := got[0]; a.Context != "other" || a.Body != "x" || a.Style != "error" {
		t.Errorf("restyled annotation %+v, want body x style error", a)
	}
	removed := false
	for _, r := range s.Requests() {
		if r.Method == http.MethodDelete && r.Path == "/v3/jobs/"+id+"/annotations/gone" && r.Status == http.StatusOK {
			removed = true
		}
	}
	if !removed {
		t.Errorf("no DELETE /v3/jobs/%s/annotations/gone answered 200", id)
	}

	s.RefuseAnnotations(http.StatusForbidden)
	id = addJob(s, `buildkite-agent annotate --context report "refused" || echo "annotate-failed"`)
	f, log, _ = runJob(t, s, id)
	if f.ExitStatus != "0" || !strings.Contains(Plain(log), "annotate-failed") {
		t.Errorf("a refused annotation: finish %s, want the command to fail\n%s", f.Raw, Plain(log))
	}
	if a := s.Annotations(id); len(a) != 0 {
		t.Errorf("a refused annotation was kept: %+v", a)
	}
}
