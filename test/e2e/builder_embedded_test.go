package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/test/harness"
)

var startedPid = regexp.MustCompile(`started the host's buildkitd \(pid (\d+)\)`)

// TestEmbeddedBuilderSharedAndRestarted: with no remote and no docker
// daemon, jobs build through one buildkitd per host that the first job
// starts; two concurrent jobs share it, it outlives them, and the next job
// restarts it when it died.
func TestEmbeddedBuilderSharedAndRestarted(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	r := newRootRig(t) // root's embedded buildkitd (the stack user's, rootless: TestEmbeddedBuilderRootlessForTheStackUser)
	r.shortState()
	bkConfig := filepath.Join(t.TempDir(), "buildkitd.toml")
	writeFile(t, bkConfig, fmt.Sprintf("[worker.oci]\n  gc = false\n[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n", kit.Registry.Host))
	writeFile(t, r.config, fmt.Sprintf(`state_dir = %q
builders = ["remote", "local", "embedded"]
[embedded]
config = %q
`, r.state, bkConfig))
	sock := embedded.Socket(r.state)
	ref := kit.Registry.Host + "/embedded/app"
	command := func(tag string) string {
		return fmt.Sprintf(`echo "buildkit-host=$BUILDKIT_HOST"
printf 'FROM %s\nRUN echo %s > /tag\n' > Dockerfile
docker buildx build --progress plain --push -t %s:%s .`, kit.BaseImage, tag, ref, tag)
	}

	// Two jobs at once: one starts the daemon, both build on it.
	idA, agentA := r.start(command("a"), nil)
	idB, agentB := r.start(command("b"), nil)
	var logs []string
	for _, j := range []struct {
		id    string
		agent *harness.Agent
	}{{idA, agentA}, {idB, agentB}} {
		f, log := r.finish(j.id, j.agent)
		if f.ExitStatus != "0" {
			t.Fatalf("job %s: %+v\n%s", j.id, f, log)
		}
		if ep, _ := chosen(t, log); ep != sock || !strings.Contains(log, "buildkit-host="+sock) {
			t.Errorf("job %s built on %s, want the embedded %s\n%s", j.id, ep, sock, section(log))
		}
		logs = append(logs, log)
	}
	starts := startedPid.FindAllStringSubmatch(strings.Join(logs, "\n"), -1)
	if len(starts) != 1 {
		t.Fatalf("%d jobs started a buildkitd, want exactly 1:\n%s\n---\n%s", len(starts), section(logs[0]), section(logs[1]))
	}
	pid, _ := strconv.Atoi(starts[0][1])
	if recorded := readPid(t, r.state); recorded != pid {
		t.Errorf("pid file says %d, the log %d", recorded, pid)
	}
	if !harness.Alive(pid) {
		t.Errorf("the embedded buildkitd %d did not outlive the jobs", pid)
	}
	emb := &harness.Buildkitd{Addr: sock}
	if n := len(histories(t, kit.Kit, emb)); n != 2 {
		t.Errorf("the embedded buildkitd ran %d builds, want both jobs' 2", n)
	}
	for _, tag := range []string{"a", "b"} {
		if code := manifestStatus(t, kit.Registry.Host, "embedded/app", tag); code != 200 {
			t.Errorf("image %s: HTTP %d", tag, code)
		}
	}

	// It dies: the next job starts a new one.
	if err := harness.StopPid(pid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	id, agent := r.start(command("c"), nil)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("job after the daemon died: %+v\n%s", f, log)
	}
	m := startedPid.FindStringSubmatch(log)
	if m == nil || m[1] == strconv.Itoa(pid) {
		t.Fatalf("the job after the daemon died did not start a new one:\n%s", section(log))
	}
	t.Logf("restarted:\n%s", section(log))
	if n, _ := strconv.Atoi(m[1]); !harness.Alive(n) || readPid(t, r.state) != n {
		t.Errorf("the restarted daemon %s is not the recorded, live one", m[1])
	}
	if code := manifestStatus(t, kit.Registry.Host, "embedded/app", "c"); code != 200 {
		t.Errorf("image c: HTTP %d", code)
	}
}

func readPid(t *testing.T, state string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(embedded.Dir(state), embedded.PidFile))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
