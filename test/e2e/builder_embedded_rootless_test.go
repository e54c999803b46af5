package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/test/harness"
)

var startedRootless = regexp.MustCompile(`started the host's buildkitd \(pid (\d+)\) in [0-9.]+m?s; it outlives this job; rootless, under \S*rootlesskit`)

// TestEmbeddedBuilderRootlessForTheStackUser: as the stack runs the agent
// (buildkite-agent, uid 2000, not root), a queue with builders =
// ["embedded"] builds on one rootless buildkitd per host, as root's queue
// does on its rootful one: two concurrent jobs share the daemon the first
// started, it runs as the user and outlives them, the next job replaces it
// when it died, a warm job starts nothing, and no job's dir is left in the
// state dir (removed, and swept by the next job, as the user). Before, the
// job failed with exit 125: the embedded buildkitd needed euid 0.
func TestEmbeddedBuilderRootlessForTheStackUser(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	h := newStackUserHost(t, kit, `["embedded"]`, "", "")
	u, state := h.user, h.state
	sock := embedded.Socket(state)
	ref := kit.Registry.Host + "/rootless/app"
	command := func(tag string) string {
		return fmt.Sprintf(`echo "buildkit-host=$BUILDKIT_HOST uid=$(id -u)"
printf 'FROM %s\nRUN echo %s > /tag\n' > Dockerfile
docker buildx build --progress plain --push -t %s:%s .`, kit.BaseImage, tag, ref, tag)
	}
	job := func(tag string) bootstrapRun { return h.job(command(tag)) }
	check := func(tag string, r bootstrapRun) string {
		t.Helper()
		log := r.stdout + r.stderr
		if r.code != 0 {
			t.Fatalf("job %s as %s: exit %d\n%s", tag, u.Name, r.code, log)
		}
		if ep, _ := chosen(t, log); ep != sock || !strings.Contains(log, fmt.Sprintf("buildkit-host=%s uid=%d", sock, u.UID)) {
			t.Errorf("job %s built on %s, want the embedded %s as uid %d\n%s", tag, ep, sock, u.UID, section(log))
		}
		if code := manifestStatus(t, kit.Registry.Host, "rootless/app", tag); code != 200 {
			t.Errorf("image %s: HTTP %d", tag, code)
		}
		return log
	}

	// Two jobs at once: one starts the daemon, both build on it.
	runs := make([]bootstrapRun, 2)
	var wg sync.WaitGroup
	for i, tag := range []string{"a", "b"} {
		wg.Add(1)
		go func() { defer wg.Done(); runs[i] = job(tag) }()
	}
	wg.Wait()
	logs := check("a", runs[0]) + "\n" + check("b", runs[1])
	starts := startedRootless.FindAllStringSubmatch(logs, -1)
	if len(starts) != 1 {
		t.Fatalf("%d jobs started a rootless buildkitd, want exactly 1:\n%s", len(starts), logs)
	}
	pid, _ := strconv.Atoi(starts[0][1])
	if recorded := readPid(t, state); recorded != pid {
		t.Errorf("pid file says %d, the log %d", recorded, pid)
	}
	if !harness.Alive(pid) {
		t.Fatalf("the embedded buildkitd %d did not outlive the jobs", pid)
	}
	checkRunsAs(t, pid, u.UID)
	if n := len(histories(t, kit.Kit, &harness.Buildkitd{Addr: sock})); n != 2 {
		t.Errorf("the embedded buildkitd ran %d builds, want both jobs' 2", n)
	}

	// It dies: the next job starts a new one, as the user.
	if err := harness.StopPid(pid, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	log := check("c", job("c"))
	m := startedRootless.FindStringSubmatch(log)
	if m == nil || m[1] == strconv.Itoa(pid) {
		t.Fatalf("the job after the daemon died did not start a new one:\n%s", section(log))
	}
	t.Logf("restarted:\n%s", section(log))
	next, _ := strconv.Atoi(m[1])
	if !harness.Alive(next) || readPid(t, state) != next {
		t.Errorf("the restarted daemon %d is not the recorded, live one", next)
	}
	checkRunsAs(t, next, u.UID)

	// A warm job: the daemon is up, nothing is started.
	log = check("d", job("d"))
	if strings.Contains(log, "started the host's buildkitd") {
		t.Errorf("a job with the daemon up started another:\n%s", section(log))
	}
	entries, err := os.ReadDir(filepath.Join(state, "jobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") { // .lock is the sweep's
			t.Errorf("job dir %s left in the state dir after every job ended", e.Name())
		}
	}
}

// stackUserHost is a host whose agent is the stack's user: its state dir
// (under a short dir, for the sockets) and config: builders, then the
// top-level keys top, and an [embedded] table reaching the kit's registry
// over plain HTTP, with the keys embedded.
type stackUserHost struct {
	t      *testing.T
	user   *harness.User
	state  string
	config string
	docker string // the user's docker config, with the real buildx plugin
}

func newStackUserHost(t *testing.T, kit *harness.Env, builders, top, embedded string) *stackUserHost {
	t.Helper()
	u := harness.MustStackUser(t)
	files := u.TempDir(t)
	base := shortDir(t) // the daemon's sockets live under the state dir
	if err := u.Chown(base); err != nil {
		t.Fatal(err)
	}
	if err := harness.Passable(base); err != nil {
		t.Fatal(err)
	}
	h := &stackUserHost{t: t, user: u, state: filepath.Join(base, "state"), config: filepath.Join(files, "dockhand.toml"), docker: filepath.Join(files, "docker")}
	t.Cleanup(func() { stopEmbedded(t, h.state) })
	bkConfig := filepath.Join(files, "buildkitd.toml")
	writeFile(t, bkConfig, fmt.Sprintf("[worker.oci]\n  gc = false\n[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n", kit.Registry.Host))
	writeFile(t, h.config, fmt.Sprintf("state_dir = %q\nbuilders = %s\n%s[embedded]\nconfig = %q\n%s", h.state, builders, top, bkConfig, embedded))
	toolBin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(h.docker, "cli-plugins"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(toolBin, "docker-buildx"), filepath.Join(h.docker, "cli-plugins", "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	if err := u.Chown(files); err != nil {
		t.Fatal(err)
	}
	return h
}

// job runs a job of command as the user through `dockhand bootstrap`.
func (h *stackUserHost) job(command string) bootstrapRun {
	return runBootstrapAs(h.t, h.user, h.config, "rootless", command, "DOCKER_CONFIG="+h.docker)
}

// TestEmbeddedRootlessMissingPieceTakesTheNextKind: as the stack user, with
// what the rootless daemon needs missing (here rootlesskit, at the path
// embedded.rootlesskit names), the job log has one line naming the cause
// and the fix, the queue's next kind (a remote buildkitd) builds, and no
// daemon is started or waited for. Before, the job tried to start a rootful
// daemon and logged that buildkitd runs as root.
func TestEmbeddedRootlessMissingPieceTakesTheNextKind(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	remote, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "remote", TCP: true, InsecureRegistries: []string{kit.Registry.Host}})
	if err != nil {
		t.Fatal(err)
	}
	h := newStackUserHost(t, kit, `["embedded", "remote"]`, fmt.Sprintf("remote.endpoints = [%q]\n", remote.TCPAddr), "rootlesskit = \"/nonexistent/rootlesskit\"\n")
	r := h.job(fmt.Sprintf(`printf 'FROM %s\nRUN echo fallback > /f\n' > Dockerfile
docker buildx build --progress plain --push -t %s/rootless/fallback:1 .`, kit.BaseImage, kit.Registry.Host))
	log := r.stdout + r.stderr
	if r.code != 0 {
		t.Fatalf("exit %d, want the remote kind to build:\n%s", r.code, log)
	}
	if ep, _ := chosen(t, log); ep != remote.TCPAddr {
		t.Errorf("built on %s, want the remote %s:\n%s", ep, remote.TCPAddr, section(log))
	}
	var about []string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "dockhand: builder: ") && strings.Contains(l, "embedded") && !strings.Contains(l, "probe") {
			about = append(about, l)
		}
	}
	want := `dockhand: builder: not embedded: not running, and dockhand runs as buildkite-agent (uid 2000) and starts buildkitd rootless: embedded.rootlesskit = "/nonexistent/rootlesskit" is not an executable; install rootlesskit there (docs/install.md) or fix the key`
	if h.user.UID != 2000 {
		want = strings.Replace(want, "uid 2000", fmt.Sprintf("uid %d", h.user.UID), 1)
	}
	if len(about) != 1 || about[0] != want {
		t.Errorf("lines about the embedded kind:\n%s\nwant exactly:\n%s", strings.Join(about, "\n"), want)
	}
	if _, err := os.Stat(filepath.Join(embedded.Dir(h.state), embedded.PidFile)); !os.IsNotExist(err) {
		t.Errorf("a daemon was started (pid file: %v)", err)
	}
	if code := manifestStatus(t, kit.Registry.Host, "rootless/fallback", "1"); code != 200 {
		t.Errorf("the image: HTTP %d", code)
	}
}

// checkRunsAs fails t unless the process pid and each of its descendants
// run as uid (real and effective), none as root.
func checkRunsAs(t *testing.T, pid, uid int) {
	t.Helper()
	for _, p := range append([]int{pid}, harness.Descendants(pid)...) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue // ended meanwhile
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "Uid:" && (f[1] != strconv.Itoa(uid) || f[2] != strconv.Itoa(uid)) {
				t.Errorf("process %d of the embedded buildkitd runs as uid %s/%s, want %d", p, f[1], f[2], uid)
			}
		}
	}
}
