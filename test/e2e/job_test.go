package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/agentapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// rig runs real jobs: the real buildkite-agent, against the fake Agent API,
// with `dockhand bootstrap` as its bootstrap-script and `dockhand shell` as
// its shell, dockhand's hooks dir in additional-hooks-paths. The agent runs
// as the Elastic CI Stack runs it, as the unprivileged buildkite-agent user
// in the docker group, unless the rig is newRootRig's.
type rig struct {
	t        *testing.T
	user     *harness.User // the agent's user; nil: root
	dir      string        // the rig's own files (config, hooks, state), the user's
	owned    []string      // more that the test makes for the user (tempDir, own)
	srv      *agentapi.Server
	dockhand string
	state    string // dockhand's state dir, shared by every job of the rig
	config   string
	userDir  string // the agent user's own docker config dir
	hooks    string // global hooks (the agent's hooks-path)
	addHooks []string
	agentEnv []string         // the agent's own environment (the host's), over the harness's
	versions harness.Versions // of the agent and of the user's plugins (useVersions)
}

// newRig is a rig whose agent runs as the stack's agent user (uid 2000),
// which owns dockhand's state dir as install-dockhand.sh makes it; with
// DOCKHAND_E2E_AGENT_USER=root, as root (to compare the two).
func newRig(t *testing.T) *rig {
	t.Helper()
	if os.Getenv(agentUserVar) == "root" {
		return newRootRig(t)
	}
	return newRigAs(t, harness.MustStackUser(t))
}

// agentUserVar set to root runs newRig's agents as root.
const agentUserVar = "DOCKHAND_E2E_AGENT_USER"

// newRootRig is a rig whose agent runs as root: only for a test about root,
// or one that needs what only root has (its caller says which).
func newRootRig(t *testing.T) *rig {
	t.Helper()
	return newRigAs(t, nil)
}

func newRigAs(t *testing.T, u *harness.User) *rig {
	t.Helper()
	srv, err := agentapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	root := harness.MustRepoRoot(t)
	toolBin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, user: u}
	dir := r.tempDir()
	*r = rig{
		t: t, user: u, dir: dir, srv: srv, dockhand: harness.DockhandBin(t),
		state:    filepath.Join(dir, "state"),
		config:   filepath.Join(dir, "dockhand.toml"),
		userDir:  filepath.Join(dir, "user-docker"),
		hooks:    filepath.Join(dir, "hooks"),
		addHooks: []string{filepath.Join(root, "hooks")},
	}
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n", r.state))
	// The agent user's docker config: the real buildx plugin, as a user
	// install would have it, and a login that must not reach any job.
	writeFile(t, filepath.Join(r.userDir, "config.json"), `{"auths":{"leak.example":{"auth":"bGVhazpsZWFr"}},"detachKeys":"ctrl-e,e"}`)
	os.MkdirAll(filepath.Join(r.userDir, "cli-plugins"), 0o700)
	if err := os.Symlink(filepath.Join(toolBin, "docker-buildx"), filepath.Join(r.userDir, "cli-plugins", "docker-buildx")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(r.hooks, 0o755)
	os.Mkdir(r.state, 0o700) // as install-dockhand.sh makes it
	if u != nil {
		if err := u.Chown(dir); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// tempDir is a temp dir for what the agent's user reads or writes
// (contexts, hooks, caches, files it is pointed at): the user's, reachable,
// and what the test writes in it is given to the user as each agent starts.
func (r *rig) tempDir() string {
	r.t.Helper()
	if r.user == nil {
		return r.t.TempDir()
	}
	dir := r.user.TempDir(r.t)
	r.owned = append(r.owned, dir)
	return dir
}

// userTempDir is a temp dir of the stack's agent user, for what a test
// makes before its rig (fake tools, their backends): reachable by the agent
// whichever user it runs as.
func userTempDir(t *testing.T) string {
	t.Helper()
	return harness.MustStackUser(t).TempDir(t)
}

// own makes paths the user's when each agent starts, as if the agent user
// had made them (the test, as root, writes them).
func (r *rig) own(paths ...string) {
	r.owned = append(r.owned, paths...)
}

// startAgent starts an agent with args as the rig's user, first giving
// that user what the test wrote for it: the rig's dir (the state dir
// among it), the agent's dir and what tempDir and own name. Other dirs
// the agent reads (extra hooks) are made reachable. A test that moves
// r.state out of the rig's dir makes it itself.
func (r *rig) startAgent(agentDir string, args []string, env ...string) *harness.Agent {
	r.t.Helper()
	if r.user != nil {
		// The rig's dir but the state dir, which is the jobs' (made the
		// user's once, by newRigAs) and changes under a running job.
		owned := append([]string{agentDir}, r.owned...)
		entries, err := os.ReadDir(r.dir)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, e := range entries {
			if p := filepath.Join(r.dir, e.Name()); p != r.state {
				owned = append(owned, p)
			}
		}
		for _, p := range append(owned, r.addHooks...) {
			if err := harness.Passable(p); err != nil {
				r.t.Fatal(err)
			}
		}
		if err := r.user.Chown(owned...); err != nil {
			r.t.Fatal(err)
		}
	}
	return harness.StartAgentWith(r.t, harness.AgentOptions{User: r.user, Version: r.versions.Agent}, args, env...)
}

// useVersions makes the rig's jobs, plain and dockhand, run the agent, buildx
// and compose of v: the agent user's cli-plugins links point at those
// plugins (compose is linked too), and the agent is started from its own dir.
func (r *rig) useVersions(v harness.Versions) {
	r.t.Helper()
	bin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		r.t.Fatal(err)
	}
	for name, version := range map[string]string{"docker-buildx": v.Buildx, "docker-compose": v.Compose} {
		real, err := harness.VersionedBin(bin, name, version)
		if err != nil {
			r.t.Fatal(err)
		}
		link := filepath.Join(r.userDir, "cli-plugins", name)
		if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
			r.t.Fatal(err)
		}
		if err := os.Symlink(real, link); err != nil {
			r.t.Fatal(err)
		}
	}
	r.versions = v
}

// hook writes an executable hook script.
func hook(t *testing.T, dir, name, body string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, name), "#!/bin/bash\n"+body)
	os.Chmod(filepath.Join(dir, name), 0o755)
}

// start queues a job with command and env and starts an agent for it.
func (r *rig) start(command string, env map[string]string) (string, *harness.Agent) {
	r.t.Helper()
	return r.startOn(shortDir(r.t), "", command, env)
}

// startOn is start on a long-lived agent of the host: its build path and
// hooks under dir, and, when name is set, that agent name (its checkout dir
// is DIR/builds/NAME/org/PIPELINE), as one agent of a host keeps them from
// job to job.
func (r *rig) startOn(dir, name, command string, env map[string]string) (string, *harness.Agent) {
	r.t.Helper()
	var named []string
	if name != "" {
		named = []string{"--name", name}
		withName := map[string]string{"BUILDKITE_AGENT_NAME": name} // as Buildkite sends it
		for k, v := range env {
			withName[k] = v
		}
		env = withName
	}
	id := r.queue(command, env)
	args := r.srv.AgentArgs(dir, id, append(named,
		"--bootstrap-script", r.dockhand+" bootstrap --config "+r.config,
		"--shell", r.dockhand+" shell -e -c",
		"--hooks-path", r.hooks,
		"--additional-hooks-paths", strings.Join(r.addHooks, ","),
		"--signal-grace-period-seconds", "5", "--cancel-grace-period", "6",
	)...)
	return id, r.startAgent(dir, args, append([]string{"DOCKER_CONFIG=" + r.userDir}, r.agentEnv...)...)
}

// queue adds a job running command with env (over the minimal job env).
func (r *rig) queue(command string, env map[string]string) string {
	id := agentapi.NewJobID()
	jobEnv := agentapi.MinimalEnv(id, command)
	for k, v := range env {
		jobEnv[k] = v
	}
	r.srv.AddJob(agentapi.Job{ID: id, Env: jobEnv})
	return id
}

// startPlain runs a job without dockhand: the agent's own bootstrap and
// shell, the agent user's docker config, the same global hooks.
func (r *rig) startPlain(command string, env map[string]string) (string, *harness.Agent) {
	r.t.Helper()
	id := r.queue(command, env)
	dir := shortDir(r.t)
	args := r.srv.AgentArgs(dir, id, "--hooks-path", r.hooks)
	return id, r.startAgent(dir, args, "DOCKER_CONFIG="+r.userDir)
}

// finish waits for the job's finish call and the agent's exit.
func (r *rig) finish(id string, a *harness.Agent) (agentapi.Finish, string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 3*time.Minute)
	defer cancel()
	f, err := r.srv.WaitFinish(ctx, id)
	if err != nil {
		r.t.Fatalf("job %s: %v\nlog:\n%s\nagent:\n%s", id, err, r.srv.PlainLog(id), a.Output())
	}
	if _, err := a.Wait(ctx); err != nil {
		r.t.Fatalf("agent: %v", err)
	}
	return f, r.srv.PlainLog(id)
}

// jobDirs lists the job dirs left in the state dir.
func (r *rig) jobDirs() []string {
	entries, _ := os.ReadDir(filepath.Join(r.state, "jobs"))
	var out []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, filepath.Join(r.state, "jobs", e.Name()))
		}
	}
	return out
}

// shortState moves the rig's state dir to a short path of its own (the
// embedded daemon's socket lives under it: sun_path holds 108 bytes), made
// as install-dockhand.sh makes it: 0700, the rig's user's. The embedded
// daemon is stopped when the test ends.
func (r *rig) shortState() {
	r.t.Helper()
	base := shortDir(r.t)
	r.state = filepath.Join(base, "state")
	if err := os.Mkdir(r.state, 0o700); err != nil {
		r.t.Fatal(err)
	}
	if r.user != nil {
		if err := r.user.Chown(base); err != nil {
			r.t.Fatal(err)
		}
		if err := harness.Passable(r.state); err != nil {
			r.t.Fatal(err)
		}
	}
	r.t.Cleanup(func() { stopEmbedded(r.t, r.state) })
}

// shortDir is a short temp dir: the agent's job API socket lives under it.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "dh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

var jobConfigLine = regexp.MustCompile(`job-docker-config=(/\S+)`)

func TestJobBuildsAndPushesInItsOwnDockerConfig(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	r := newRig(t)
	ref := kit.Registry.Host + "/job/app:1"
	command := fmt.Sprintf(`echo "job-docker-config=$DOCKER_CONFIG"
printf 'FROM %s\nRUN echo built-in-a-job > /f\n' > Dockerfile
docker buildx create --name kit --driver remote %s >/dev/null
docker buildx build --builder kit --progress plain --push -t %s .
test ! -e "$DOCKER_CONFIG/../credentials.json"
grep -q '"nscr.io": "dockhand"' "$DOCKER_CONFIG/config.json"
! grep -q credsStore "$DOCKER_CONFIG/config.json"
grep -q ctrl-e "$DOCKER_CONFIG/config.json"
! grep -q leak.example "$DOCKER_CONFIG/config.json"`, kit.BaseImage, kit.Buildkitd.Addr, ref)
	id, agent := r.start(command, nil)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit_status = %q, want 0\n%s", f.ExitStatus, log)
	}
	if !strings.Contains(log, "--- :docker: dockhand") || !strings.Contains(log, "dockhand: ready in") {
		t.Errorf("no dockhand section in the job log:\n%s", log)
	}
	m := jobConfigLine.FindStringSubmatch(log)
	if m == nil || !strings.HasPrefix(m[1], filepath.Join(r.state, "jobs")+"/") {
		t.Fatalf("the command's DOCKER_CONFIG is not in a job dir under %s:\n%s", r.state, log)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("job docker config %s still there after the job: %v", m[1], err)
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs left behind: %q", left)
	}
	if code := manifestStatus(t, kit.Registry.Host, "job/app", "1"); code != 200 {
		t.Errorf("pushed image: HTTP %d, want 200", code)
	}
}

func TestJobExitStatusAndCancel(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	id, agent := r.start("echo about to fail; exit 3", nil)
	if f, log := r.finish(id, agent); f.ExitStatus != "3" || f.Signal != "" {
		t.Errorf("finish = %+v, want exit_status 3\n%s", f, log)
	}

	id, agent = r.start(`echo "job-docker-config=$DOCKER_CONFIG"; echo RE""ADY; sleep 60; echo NE""VER`, nil)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := r.srv.WaitLog(ctx, id, "\nREADY"); err != nil {
		t.Fatalf("%v\n%s", err, r.srv.PlainLog(id))
	}
	r.srv.Cancel(id)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "-1" || f.Signal != "SIGTERM" || f.SignalReason != "cancel" {
		t.Errorf("cancelled job finished with %+v, want -1 SIGTERM cancel (as the plain bootstrap reports)\n%s", f, log)
	}
	if strings.Contains(log, "NEVER") {
		t.Errorf("the command ran on after the cancel:\n%s", log)
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs left after a cancelled job: %q", left)
	}
}

func TestKilledBootstrapDirIsSweptByTheNextJob(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// The command SIGKILLs dockhand, the parent of buildkite-agent bootstrap
	// (the command's own parent): the job dir stays. The real bootstrap gets
	// SIGTERM as dockhand dies and ends; until then it holds the dir's lock.
	id, agent := r.start(`echo "job-docker-config=$DOCKER_CONFIG"
echo "real-bootstrap-pid=$PPID"
kill -KILL "$(awk '{print $4}' /proc/$PPID/stat)"`, nil)
	f, log := r.finish(id, agent)
	if f.Signal != "SIGKILL" {
		t.Fatalf("finish = %+v, want the bootstrap killed by SIGKILL\n%s", f, log)
	}
	m := regexp.MustCompile(`real-bootstrap-pid=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no real bootstrap pid in the log:\n%s", log)
	}
	if !harness.WaitGone(m[1], 15*time.Second) {
		t.Fatalf("the real bootstrap (pid %s) still runs 15s after dockhand was killed", m[1])
	}
	left := r.jobDirs()
	if len(left) != 1 {
		t.Fatalf("after the kill, job dirs = %q, want the dead job's", left)
	}
	id, agent = r.start("echo second job", nil)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "removed 1 job dir(s) left by dead jobs") {
		t.Errorf("second job: %+v\n%s", f, log)
	}
	if _, err := os.Stat(left[0]); !os.IsNotExist(err) {
		t.Errorf("the dead job's dir %s survived the next bootstrap: %v", left[0], err)
	}
}

// TestElasticStackHooks reproduces the Elastic CI Stack's global hooks: the
// environment hook points DOCKER_CONFIG at an empty temp dir and logs in
// there, the pre-exit deletes it before plugin pre-exits run. dockhand's
// environment hook keeps one job config with those logins; a plugin-like
// pre-exit after the stack's still finds it.
func TestElasticStackHooks(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{RegistryUser: "ci", RegistryPassword: "stack-login-pw"})
	r := newRig(t)
	hook(t, r.hooks, "environment", `set -euo pipefail
export BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY="$(mktemp -d)"
export DOCKER_CONFIG="$BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY"
echo "stack-temp-dir=$DOCKER_CONFIG"
printf '%s\n' "$STACK_REGISTRY_PASSWORD" | docker login --username ci --password-stdin "$STACK_REGISTRY"
`)
	hook(t, r.hooks, "pre-exit", `rm -rf "$BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY"
echo "stack pre-exit removed $BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY"
`)
	plugin := r.tempDir() // runs after the stack's global hooks, like a plugin's pre-exit
	hook(t, plugin, "pre-exit", `set -e
test -f "$DOCKER_CONFIG/config.json"
docker buildx ls >/dev/null
echo "plugin-pre-exit: docker config still there at $DOCKER_CONFIG"
`)
	r.addHooks = append(r.addHooks, plugin)
	ref := kit.Registry.Host + "/stack/app:1"
	command := fmt.Sprintf(`echo "job-docker-config=$DOCKER_CONFIG"
printf 'FROM %s\nRUN echo stack > /f\n' > Dockerfile
docker buildx create --name kit --driver remote %s >/dev/null
docker buildx build --builder kit --push -t %s .`, kit.BaseImage, kit.Buildkitd.Addr, ref)
	id, agent := r.start(command, map[string]string{
		"STACK_REGISTRY": kit.Registry.Host, "STACK_REGISTRY_PASSWORD": kit.Registry.Password,
	})
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit_status = %q, want 0\n%s", f.ExitStatus, log)
	}
	if strings.Contains(log, kit.Registry.Password) {
		t.Errorf("the registry password appears in the job log")
	}
	m := jobConfigLine.FindStringSubmatch(log)
	if m == nil || !strings.HasPrefix(m[1], r.state) {
		t.Fatalf("the command did not get the job's docker config:\n%s", log)
	}
	if !strings.Contains(log, "plugin-pre-exit: docker config still there at "+m[1]) {
		t.Errorf("the plugin-like pre-exit did not find the job's config:\n%s", log)
	}
	if !strings.Contains(log, "carried over: "+kit.Registry.Host) {
		t.Errorf("dockhand's hook did not say it carried the stack's login over:\n%s", log)
	}
	if code := manifestStatus(t, kit.Registry.Host, "stack/app", "1"); code != 401 {
		t.Errorf("anonymous HEAD on the auth registry: HTTP %d, want 401 (the push must have used the login)", code)
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs left behind: %q", left)
	}
	tmp := regexp.MustCompile(`stack-temp-dir=(/\S+)`).FindStringSubmatch(log)
	if tmp == nil {
		t.Fatalf("no stack temp dir in the log:\n%s", log)
	}
	if _, err := os.Stat(tmp[1]); !os.IsNotExist(err) {
		t.Errorf("the stack's temp dir %s is left: %v", tmp[1], err)
	}
}

// TestEightJobsAtOnce: eight agents on one host share the state dir; each
// job sees only its own docker config, and one job's `docker login` does not
// reach the others.
func TestEightJobsAtOnce(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{RegistryUser: "ci", RegistryPassword: "only-job-zero"})
	r := newRig(t)
	fifo := filepath.Join(r.tempDir(), "release") // the jobs read it
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	inspect := "docker buildx imagetools inspect " + kit.BaseImage
	first, firstAgent := r.start(fmt.Sprintf(`echo "job-docker-config=$DOCKER_CONFIG"
printf '%%s\n' "$REG_PASSWORD" | docker login -u ci --password-stdin %s
%s >/dev/null
echo LOGGED""IN
read -r _ < %s
%s >/dev/null`, kit.Registry.Host, inspect, fifo, inspect), map[string]string{"REG_PASSWORD": kit.Registry.Password})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := r.srv.WaitLog(ctx, first, "\nLOGGEDIN"); err != nil {
		t.Fatalf("%v\n%s", err, r.srv.PlainLog(first))
	}
	type run struct {
		id    string
		agent *harness.Agent
	}
	var others []run
	for range 7 {
		id, a := r.start(fmt.Sprintf(`echo "job-docker-config=$DOCKER_CONFIG"
if %s >/dev/null 2>&1; then echo "REACHED-ANOTHER-JOBS-LOGIN"; exit 9; fi
printf %%s %s | docker-credential-dockhand get && exit 8
echo isolated`, inspect, kit.Registry.Host), nil)
		others = append(others, run{id, a})
	}
	seen := map[string]bool{}
	for _, o := range others {
		f, log := r.finish(o.id, o.agent)
		if f.ExitStatus != "0" || !strings.Contains(log, "isolated") {
			t.Errorf("job %s: %+v\n%s", o.id, f, log)
		}
		m := jobConfigLine.FindStringSubmatch(log)
		if m == nil || seen[m[1]] {
			t.Errorf("job %s: docker config %v not its own", o.id, m)
			continue
		}
		seen[m[1]] = true
	}
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, log := r.finish(first, firstAgent)
	if f.ExitStatus != "0" {
		t.Errorf("the logged-in job: %+v\n%s", f, log)
	}
	if m := jobConfigLine.FindStringSubmatch(log); m == nil || seen[m[1]] {
		t.Errorf("the logged-in job shared a docker config: %v", m)
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs left behind: %q", left)
	}
}
