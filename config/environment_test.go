package config

import "testing"

func TestEnvironmentHelpers(t *testing.T) {
	e := FromSlice([]string{"BUILDKITE_JOB_ID=0190", "BUILDKITE_AGENT_META_DATA_QUEUE=build", "junk", "=x"})
	if !InJob(e) || Queue(e) != "build" {
		t.Errorf("InJob, Queue = %v, %q", InJob(e), Queue(e))
	}
	if _, ok := e.Get("junk"); ok {
		t.Error("an entry without '=' was kept")
	}
	e = FromSlice([]string{"BUILDKITE_JOB_ID="})
	if InJob(e) || Queue(e) != "" {
		t.Errorf("empty job id: InJob, Queue = %v, %q", InJob(e), Queue(e))
	}
	if InJob(nil) || Queue(nil) != "" {
		t.Error("nil environment is not empty")
	}
}
