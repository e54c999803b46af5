package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// The stack's agent user, as install-dockhand.sh sets the host up (the
// state dir the user's, 0700), runs job after job with the queue the issue
// was found with: local first, on a real engine whose socket is the docker
// group's. Before, the second job failed on the sweep (STATE/jobs is 0300,
// which root ignores and its owner cannot list).
func TestJobAfterJobAsTheAgentUser(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRigAs(t, harness.MustStackUser(t)) // about the agent user, whatever DOCKHAND_E2E_AGENT_USER says
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"local\", \"remote\"]\n[remote]\nendpoints = [%q]\n", r.state, kit.Buildkitd.Addr))
	command := fmt.Sprintf(`set -e
echo "job-uid=$(id -u)"
printf 'FROM %s\nRUN echo as-the-agent-user > /f\n' > Dockerfile
docker buildx build --progress plain -t job-after-job .`, kit.BaseImage)
	env := map[string]string{"DOCKER_HOST": engine.Host}
	for n := range 3 {
		id, agent := r.start(command, env)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" || !strings.Contains(log, fmt.Sprintf("job-uid=%d", r.user.UID)) {
			t.Fatalf("job %d as uid %d: exit %q\n%s", n+1, r.user.UID, f.ExitStatus, log)
		}
		if !strings.Contains(log, `dockhand: builder: local "default"`) || strings.Contains(log, "warning") {
			t.Errorf("job %d: want the engine's own builder and no warning:\n%s", n+1, section(log))
		}
		if left := r.jobDirs(); len(left) != 0 {
			t.Fatalf("job %d left job dirs: %q", n+1, left)
		}
	}
	fi, err := os.Stat(filepath.Join(r.state, "jobs"))
	if err != nil || fi.Mode().Perm() != 0o300 {
		t.Errorf("STATE/jobs: %v, %v; want mode 0300 kept", fi, err)
	}
}

// An agent user the engine's socket refuses (not in its group): one line
// names the cause and the fix, the next kind builds, nothing hangs.
func TestEngineSocketDeniedToTheAgentUser(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(engine.Socket, 0, 0); err != nil { // the group root, which the user is not in
		t.Fatal(err)
	}
	r := newRigAs(t, harness.MustStackUser(t)) // about the agent user, whatever DOCKHAND_E2E_AGENT_USER says
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"local\", \"remote\"]\n[remote]\nendpoints = [%q]\n", r.state, kit.Buildkitd.Addr))
	command := fmt.Sprintf(`set -e
printf 'FROM %s\nRUN echo on-the-next-kind > /f\n' > Dockerfile
docker buildx build --progress plain .
echo built-on-the-next-kind`, kit.BaseImage)
	id, agent := r.start(command, map[string]string{"DOCKER_HOST": engine.Host})
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "\nbuilt-on-the-next-kind") {
		t.Fatalf("exit %q, want the build on the next kind\n%s", f.ExitStatus, log)
	}
	want := fmt.Sprintf("dockhand: builder: not local: this user may not use the docker daemon's socket (%s: permission denied: uid %d may not use the socket %s (mode 0660, group root; this process is not in that group): add the agent user to group root",
		engine.Host, r.user.UID, engine.Socket)
	if strings.Count(section(log), "dockhand: builder: not local: this user may not use") != 1 || !strings.Contains(log, want) {
		t.Errorf("want one line %q:\n%s", want, section(log))
	}
	if !strings.Contains(log, `dockhand: builder: remote "`) {
		t.Errorf("the next kind, remote, was not chosen:\n%s", section(log))
	}
}

// A state dir of another user's (root's, as a run as root leaves it): the
// job runs on the private dir under TMPDIR, with one line naming the cause
// and the fix; its builder is chosen as always. Then the same for a state
// dir of the agent user's in which root left STATE/jobs.
func TestStateDirOfAnotherUser(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	r := newRigAs(t, harness.MustStackUser(t)) // about the agent user, whatever DOCKHAND_E2E_AGENT_USER says
	rootsState := filepath.Join(userTempDir(t), "state")
	if err := os.Mkdir(rootsState, 0o700); err != nil { // root's: the test runs as root
		t.Fatal(err)
	}
	leftJobs := filepath.Join(r.state, "jobs")
	if err := os.Mkdir(leftJobs, 0o700); err != nil { // root's, in the user's state dir
		t.Fatal(err)
	}
	command := fmt.Sprintf(`set -e
printf 'FROM %s\nRUN echo state-elsewhere > /f\n' > Dockerfile
docker buildx build --progress plain .
echo "job-dir=$DOCKHAND_JOB_DIR"`, kit.BaseImage)
	for _, tc := range []struct{ state, cause string }{
		{rootsState, fmt.Sprintf("%s is owned by uid 0, not by uid %d that dockhand runs as (fix: chown -R %d %s, as install-dockhand.sh --user does)", rootsState, r.user.UID, r.user.UID, rootsState)},
		{r.state, fmt.Sprintf("permission denied (fix: chown -R %d %s, as install-dockhand.sh --user does)", r.user.UID, r.state)},
	} {
		writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"remote\"]\n[remote]\nendpoints = [%q]\n", tc.state, kit.Buildkitd.Addr))
		id, agent := r.start(command, nil)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" {
			t.Fatalf("state dir %s: exit %q, want 0\n%s", tc.state, f.ExitStatus, log)
		}
		line := lineWith(log, "dockhand: warning: state dir "+tc.state+" not usable (")
		if !strings.Contains(line, tc.cause) || !strings.Contains(line, fmt.Sprintf("/dockhand-%d", r.user.UID)) {
			t.Errorf("state dir %s: want one line naming %q and the private dir, got %q:\n%s", tc.state, tc.cause, line, section(log))
		}
		if !strings.Contains(log, `dockhand: builder: remote "`) || strings.Contains(log, "job-dir="+tc.state) {
			t.Errorf("state dir %s: want the remote builder and a job dir elsewhere:\n%s", tc.state, section(log))
		}
	}
}
