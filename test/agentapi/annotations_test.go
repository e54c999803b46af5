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

// TestAnnotationOverLimitRefused: the API keeps no annotation body over
// 1 MiB. `buildkite-agent annotate` refuses such a body itself, before any
// request; an --append that takes an annotation past the limit reaches the
// API, which answers 400 with its message, and the annotation stays as it
// was.
func TestAnnotationOverLimitRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	id := addJob(s, `head -c 1048500 /dev/zero | tr '\0' a | buildkite-agent annotate --context big --style info
head -c 1048577 /dev/zero | tr '\0' b | buildkite-agent annotate --context huge || echo "huge-refused"
head -c 100 /dev/zero | tr '\0' c | buildkite-agent annotate --context big --append || echo "append-refused"`)
	f, log, _ := runJob(t, s, id)
	plain := Plain(log)
	if f.ExitStatus != "0" || !strings.Contains(plain, "huge-refused") || !strings.Contains(plain, "append-refused") {
		t.Fatalf("finish %s, want both over-limit annotations refused\n%s", f.Raw, plain)
	}
	if !strings.Contains(plain, "annotation body size (1048577B) exceeds maximum (1048576B)") {
		t.Errorf("the agent's own refusal is not in the log:\n%s", plain)
	}
	if !strings.Contains(plain, "400 Bad Request: "+annotationTooLarge) {
		t.Errorf("the API's refusal of the append is not in the log:\n%s", plain)
	}
	got := s.Annotations(id)
	if len(got) != 1 || got[0].Context != "big" || len(got[0].Body) != 1048500 || strings.Contains(got[0].Body, "c") {
		t.Errorf("annotations: %d, want only big, unchanged by the refused append", len(got))
	}
	posts := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && r.Path == "/v3/jobs/"+id+"/annotations" {
			posts++
		}
	}
	if posts != 2 {
		t.Errorf("%d annotation requests, want 2: the agent sends no body over the limit, nor retries a 400", posts)
	}
}
