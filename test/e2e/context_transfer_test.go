package e2e

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// bigContext writes a build context of files × 2 MB of random data, a
// Dockerfile copying all of it and a small changed.txt, under dir.
func bigContext(t *testing.T, dir string, files int) {
	t.Helper()
	buf := make([]byte, 2<<20)
	for i := range files {
		rand.Read(buf)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data", fmt.Sprintf("blob-%02d", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\nCOPY . /ctx\n")
	writeFile(t, filepath.Join(dir, "changed.txt"), "initial\n")
}

// transfers runs a job on an agent and returns the context uploads its
// builds reported, failing the test unless it exits 0.
func transfers(t *testing.T, r *rig, agentDir, agentName, command string, env map[string]string) ([]harness.Transfer, string) {
	t.Helper()
	id, agent := r.startOn(agentDir, agentName, command, env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("job on %s: exit_status %q\n%s", agentName, f.ExitStatus, log)
	}
	tr := harness.ContextTransfers(log)
	if len(tr) == 0 {
		t.Fatalf("job on %s: no 'transferring context: … done' in the log:\n%s", agentName, log)
	}
	return tr, log
}

// TestContextUploadIsIncrementalAcrossJobs: jobs of one pipeline on one host
// and a remote buildkitd, a 50 MB context with one small file changed by
// each job: the first job of each agent uploads it all, every later job under
// 1 % of that, whichever agent of the host ran in between; two builds at once
// in one job (the same upload key) both succeed with the job's files; and
// two jobs of the pipeline at once on the host's two agents stay incremental.
func TestContextUploadIsIncrementalAcrossJobs(t *testing.T) {
	t.Parallel()
	p := startPool(t, 1)
	r := newRig(t)
	writeFile(t, r.config, p.config(r.state, p.fleet.Client, p.eps, ""))
	const slug = "context-app"
	env := map[string]string{"BUILDKITE_PIPELINE_SLUG": slug}

	// Each agent's checkout of the pipeline: the same files, written
	// separately (as two clones would be), so their mtimes differ.
	root := r.tempDir()
	agentA, agentB := shortDir(t), shortDir(t)
	ctxA, ctxB := filepath.Join(root, "a", "app"), filepath.Join(root, "b", "app")
	bigContext(t, ctxA, 25)
	bigContext(t, ctxB, 25)
	build := func(ctx string, n int) string {
		return fmt.Sprintf("cd %s && echo job-%d > changed.txt && docker buildx build --progress plain .", ctx, n)
	}
	const full = 50_000_000
	small := func(what string, tr harness.Transfer, first harness.Transfer) {
		t.Helper()
		if tr.Bytes*100 >= first.Bytes {
			t.Errorf("%s uploaded %d bytes, not under 1%% of the first upload's %d", what, tr.Bytes, first.Bytes)
		}
	}

	a1, log := transfers(t, r, agentA, "host-agent-1", build(ctxA, 1), env)
	if a1[0].Bytes < full {
		t.Fatalf("the first job uploaded %d bytes, want the whole context (≥ %d)\n%s", a1[0].Bytes, full, log)
	}
	if !strings.Contains(section(log), "node identity kept per pipeline and checkout") {
		t.Errorf("the dockhand section does not name the node identity:\n%s", section(log))
	}
	a2, _ := transfers(t, r, agentA, "host-agent-1", build(ctxA, 2), env)
	small("agent 1's second job", a2[0], a1[0])

	// The host's other agent: its own checkout, so its first upload is
	// whole; it must not spoil agent 1's next upload.
	b1, _ := transfers(t, r, agentB, "host-agent-2", build(ctxB, 1), env)
	if b1[0].Bytes < full {
		t.Errorf("agent 2's first job uploaded %d bytes, want its whole checkout", b1[0].Bytes)
	}
	a3, _ := transfers(t, r, agentA, "host-agent-1", build(ctxA, 3), env)
	small("agent 1's job after agent 2's", a3[0], a1[0])
	b2, _ := transfers(t, r, agentB, "host-agent-2", build(ctxB, 2), env)
	small("agent 2's second job", b2[0], b1[0])

	// Two builds at once in one job: one key, two uploads; both succeed and
	// both images hold this job's file.
	out := r.tempDir()
	both := fmt.Sprintf(`cd %s && echo job-4 > changed.txt
docker buildx build --progress plain --output type=local,dest=%s/one . & one=$!
docker buildx build --progress plain --output type=local,dest=%s/two . & two=$!
wait $one && wait $two`, ctxA, out, out)
	a4, log := transfers(t, r, agentA, "host-agent-1", both, env)
	if len(a4) != 2 {
		t.Fatalf("want two uploads in the job with two builds, got %+v\n%s", a4, log)
	}
	for _, d := range []string{"one", "two"} {
		if b, err := os.ReadFile(filepath.Join(out, d, "ctx", "changed.txt")); err != nil || string(b) != "job-4\n" {
			t.Errorf("build %s: changed.txt = %q, %v; want job-4", d, b, err)
		}
	}

	t.Logf("context uploads (bytes): agent 1 job 1 %d, job 2 %d; agent 2 job 1 %d; agent 1 job 3 %d; agent 2 job 2 %d; two builds at once %d and %d",
		a1[0].Bytes, a2[0].Bytes, b1[0].Bytes, a3[0].Bytes, b2[0].Bytes, a4[0].Bytes, a4[1].Bytes)

	// Two jobs of the pipeline at once, one per agent.
	idA, agA := r.startOn(agentA, "host-agent-1", build(ctxA, 5), env)
	idB, agB := r.startOn(agentB, "host-agent-2", build(ctxB, 3), env)
	for _, j := range []struct {
		id    string
		agent *harness.Agent
		first harness.Transfer
		what  string
	}{{idA, agA, a1[0], "agent 1's job run beside agent 2's"}, {idB, agB, b1[0], "agent 2's job run beside agent 1's"}} {
		f, log := r.finish(j.id, j.agent)
		if f.ExitStatus != "0" {
			t.Fatalf("%s: exit_status %q\n%s", j.what, f.ExitStatus, log)
		}
		tr := harness.ContextTransfers(log)
		if len(tr) != 1 {
			t.Fatalf("%s: uploads %+v\n%s", j.what, tr, log)
		}
		small(j.what, tr[0], j.first)
		t.Logf("%s: %d bytes", j.what, tr[0].Bytes)
	}
}

// TestContextUploadNeverCrossesPipelines: two pipelines on one host build
// contexts with the same base name, holding a file of the same path, size,
// mode and mtime but other content (what BuildKit's metadata diff would
// take for unchanged). Each pipeline's image holds its own file, job after
// job.
func TestContextUploadNeverCrossesPipelines(t *testing.T) {
	t.Parallel()
	p := startPool(t, 1)
	r := newRig(t)
	writeFile(t, r.config, p.config(r.state, p.fleet.Client, p.eps, ""))
	agent := shortDir(t)
	stamp := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	root := r.tempDir()
	for _, round := range []int{1, 2} {
		for _, pipe := range []string{"pipeline-one", "pipeline-two"} {
			ctx := filepath.Join(root, pipe, "app")
			writeFile(t, filepath.Join(ctx, "Dockerfile"), "FROM scratch\nCOPY f /f\n")
			writeFile(t, filepath.Join(ctx, "f"), pipe+"\n") // both names are 12 bytes
			if err := os.Chtimes(filepath.Join(ctx, "f"), stamp, stamp); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(root, fmt.Sprintf("out-%s-%d", pipe, round))
			cmd := fmt.Sprintf("cd %s && docker buildx build --progress plain --output type=local,dest=%s .", ctx, out)
			transfers(t, r, agent, "host-agent-1", cmd, map[string]string{"BUILDKITE_PIPELINE_SLUG": pipe})
			want, _ := os.ReadFile(filepath.Join(ctx, "f"))
			got, err := os.ReadFile(filepath.Join(out, "f"))
			if err != nil || string(got) != string(want) {
				t.Errorf("round %d, %s: the image's f is %q (%v), want its own %q", round, pipe, got, err, want)
			}
		}
	}
}
