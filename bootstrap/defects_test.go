package bootstrap

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/config"
)

// Regression tests for the defects of issue 12 that live in the bootstrap,
// each named for its number there.

// A job whose id starts with "." dies: its dir (credentials.json and all)
// is swept by the next job like any other. A dot-named dir an older
// dockhand left behind is swept too.
func TestDefect14_DotJobIDSwept(t *testing.T) {
	state := t.TempDir()
	for _, id := range []string{".hidden", "..", "."} {
		dead, err := CreateJobDir(t.Context(), state, id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(dead.Path), ".") {
			t.Errorf("job %q got the hidden dir %s", id, dead.Path)
		}
		os.WriteFile(filepath.Join(dead.Path, "credentials.json"), []byte("{}"), 0o600)
		dead.lock.Close() // the job died
	}
	legacy := filepath.Join(state, "jobs", ".old-123")
	os.Mkdir(legacy, 0o700)
	os.WriteFile(filepath.Join(legacy, "credentials.json"), []byte("{}"), 0o600)
	removed, err := Sweep(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, legacy) || len(removed) != 4 {
		t.Errorf("Sweep removed %q, want the 3 dead jobs and %s", removed, legacy)
	}
	// Go's "*" matches names starting with "." too.
	if left, _ := filepath.Glob(filepath.Join(state, "jobs", "*", "credentials.json")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}

// Eviction from the local cache takes only OCI layouts (index.json and
// blobs/): not the state dir's buildkitd/ or tokens/ when cache.local.dir is
// the state dir, nor anything else an operator keeps there. Pointing
// cache.local.dir at the state dir (or above it) is a configuration error.
func TestDefect12_EvictionOnlyRemovesOCILayouts(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	old := now.Add(-72 * time.Hour)
	mk := func(name string, files ...string) {
		for _, f := range files {
			p := filepath.Join(dir, name, f)
			os.MkdirAll(filepath.Dir(p), 0o700)
			os.WriteFile(p, make([]byte, 1000), 0o600)
			os.Chtimes(p, old, old)
		}
		os.Chtimes(filepath.Join(dir, name), old, old)
	}
	mk("pipeline-a", "index.json", "blobs/sha256/x")
	mk("buildkitd", "buildkitd.toml", "root/cache.db")
	mk("tokens", "ecr.json")
	mk("jobs", "job-1/credentials.json")
	mk("not-quite", "index.json") // no blobs/: not a layout
	evicted, _, err := PruneLocalCache(dir, "mine", 1, now, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(evicted, []string{"pipeline-a"}) {
		t.Errorf("evicted %q, want only the layout pipeline-a", evicted)
	}
	for _, keep := range []string{"buildkitd/root/cache.db", "tokens/ecr.json", "jobs/job-1/credentials.json", "not-quite/index.json"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s was removed: %v", keep, err)
		}
	}
	for _, tt := range []struct{ state, cache string }{{"/var/lib/dockhand", "/var/lib/dockhand"}, {"/var/lib/dockhand", "/var/lib"}, {"/var/lib/dockhand/", "/var/lib/dockhand"}} {
		file := fmt.Sprintf("state_dir = %q\n[cache]\nbackend = \"local\"\n[cache.local]\ndir = %q\n", tt.state, tt.cache)
		if _, err := config.Parse("x.toml", []byte(file), ""); err == nil || !strings.Contains(err.Error(), "cache.local.dir") {
			t.Errorf("state_dir %s with cache.local.dir %s: %v, want an error naming cache.local.dir", tt.state, tt.cache, err)
		}
	}
	if _, err := config.Parse("x.toml", []byte("state_dir = \"/var/lib/dockhand\"\n[cache]\nbackend = \"local\"\n[cache.local]\ndir = \"/var/lib/dockhand/cache\"\n"), ""); err != nil {
		t.Errorf("a cache dir inside the state dir was refused: %v", err)
	}
}

// A Job API double that records redactions (the agent's wire protocol: POST
// /api/current-job/v0/redactions with the bearer token).
func startRedactionRecorder(t *testing.T) (sock, token string, got func() []string) {
	dir, err := os.MkdirTemp("", "jobapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock, token = filepath.Join(dir, "job.sock"), "job-api-token"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var redacted []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token || r.URL.Path != "/api/current-job/v0/redactions" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var req struct {
			Redact string `json:"redact"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		redacted = append(redacted, req.Redact)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"redacted": req.Redact})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, token, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(redacted)
	}
}

// Logins `dockhand hook environment` carries over from another hook's docker
// config are added to the job's log redactor, as a `docker login` is.
func TestDefect09_HookImportedLoginsRedacted(t *testing.T) {
	sock, token, got := startRedactionRecorder(t)
	jobDir := t.TempDir()
	if err := SeedDockerConfig(filepath.Join(jobDir, "docker"), UserDockerConfig{}, Credentials{}, "/usr/local/bin/dockhand"); err != nil {
		t.Fatal(err)
	}
	stack := t.TempDir()
	os.WriteFile(filepath.Join(stack, "config.json"), []byte(`{"auths": {
		"127.0.0.1:5000": {"auth": "Y2k6czNjcmV0"},
		"reg.example": {"identitytoken": "id-t0ken"}}}`), 0o600)
	e := agentenv.FromMap(map[string]string{JobDirVar: jobDir, DockerConfigVar: stack,
		"BUILDKITE_AGENT_JOB_API_SOCKET": sock, "BUILDKITE_AGENT_JOB_API_TOKEN": token})
	var out, log strings.Builder
	if err := EnvironmentHook(t.Context(), e, &out, &log); err != nil {
		t.Fatal(err)
	}
	if r := got(); !slices.Contains(r, "s3cret") || !slices.Contains(r, "id-t0ken") {
		t.Errorf("redacted %q, want both imported secrets (log %q)", r, log.String())
	}
}

// With STATE/jobs/.lock held by a stuck process, the bootstrap's wait ends
// at the agent's cancel signal: it ends as a cancelled bootstrap would,
// instead of hanging until the agent's SIGKILL.
func TestDefect04_BootstrapHonoursSignalWhileWaitingForLock(t *testing.T) {
	state := t.TempDir()
	os.MkdirAll(filepath.Join(state, "jobs"), 0o700)
	f, err := os.OpenFile(filepath.Join(state, "jobs", ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default("")
	cfg.StateDir = state
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM // the agent cancels the job while setup waits
	endsBySignal(t, runAsync(cfg, "/usr/local/bin/dockhand", sigs), "waits for the lock")
	if entries, _ := os.ReadDir(filepath.Join(state, "jobs")); len(entries) != 1 {
		t.Errorf("left behind in jobs/: %v", entries) // only .lock
	}
}

// The agent cancels a job while Namespace is being set up (nsc can take up
// to a minute): the bootstrap stops the setup and ends at once, as a
// cancelled bootstrap would, leaving no job dir and no nsc running.
func TestDefect05_CancelDuringSetupIsHonoured(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	if err := syscall.Mkfifo(started, 0o600); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "nsc.pid")
	// An nsc that says it started, then never answers.
	nsc := filepath.Join(dir, "nsc")
	os.WriteFile(nsc, []byte("#!/bin/sh\necho $$ >"+pidFile+"\necho up >"+started+"\nexec sleep 300\n"), 0o700)
	state := filepath.Join(dir, "state")
	cfg := config.Default("")
	cfg.StateDir = state
	cfg.Builders = []string{config.BuilderNamespace}
	cfg.Namespace.NSC, cfg.Namespace.TenantID, cfg.Namespace.Auth = nsc, "tenant", config.AuthCognito
	sigs := make(chan os.Signal, 1)
	got := runAsync(cfg, filepath.Join(dir, "dockhand"), sigs)
	if _, err := os.ReadFile(started); err != nil { // blocks until nsc runs
		t.Fatal(err)
	}
	sigs <- syscall.SIGTERM
	endsBySignal(t, got, "sets up")
	if data, err := os.ReadFile(pidFile); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(stat), ") Z") {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("nsc (pid %d) still running after the cancel", pid)
			}
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(state, "jobs")); len(entries) != 1 {
		t.Errorf("left behind in jobs/: %v", entries)
	}
}

type runResult struct {
	exit Exit
	err  error
}

// runAsync runs one job's bootstrap with cfg in the background.
func runAsync(cfg *config.Config, self string, sigs chan os.Signal) <-chan runResult {
	got := make(chan runResult, 1)
	go func() {
		exit, err := Run(Options{Env: agentenv.FromMap(map[string]string{"BUILDKITE_JOB_ID": "j1", "PATH": "/usr/bin:/bin"}),
			Config: cfg, Self: self, Log: io.Discard, UID: os.Getuid(), Signals: sigs})
		got <- runResult{exit, err}
	}()
	return got
}

// endsBySignal checks the bootstrap ended by SIGTERM within 10 s of it.
func endsBySignal(t *testing.T, got <-chan runResult, doing string) {
	t.Helper()
	select {
	case r := <-got:
		if r.err != nil || r.exit.Signal != syscall.SIGTERM {
			t.Errorf("Run = %+v, %v; want the SIGTERM exit", r.exit, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the bootstrap still %s 10s after SIGTERM", doing)
	}
}

// A configured state_dir that another user owns or may write (or that sits
// under a dir another user may write) is not used: that user could plant
// docker/cli-plugins/docker-buildx in a job dir and run code as the agent
// user. The job falls back to its private TMPDIR dir, and says why.
func TestDefect02_StateDirOfAnotherUserNotUsed(t *testing.T) {
	uid := os.Getuid()
	type setup func(t *testing.T, root string) string
	cases := map[string]setup{
		"world-writable": func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			os.Mkdir(d, 0o700)
			os.Chmod(d, 0o777)
			return d
		},
		"group-writable": func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			os.Mkdir(d, 0o700)
			os.Chmod(d, 0o770)
			return d
		},
		"under a world-writable dir without the sticky bit": func(t *testing.T, root string) string {
			shared := filepath.Join(root, "shared")
			os.Mkdir(shared, 0o700)
			os.Chmod(shared, 0o777)
			d := filepath.Join(shared, "state")
			os.Mkdir(d, 0o700)
			return d
		},
		"a symlink to a world-writable dir": func(t *testing.T, root string) string {
			target := filepath.Join(root, "target")
			os.Mkdir(target, 0o700)
			os.Chmod(target, 0o777)
			link := filepath.Join(root, "state")
			os.Symlink(target, link)
			return link
		},
	}
	if uid == 0 {
		cases["owned by another user"] = func(t *testing.T, root string) string {
			d := filepath.Join(root, "state")
			os.Mkdir(d, 0o700)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			configured := mk(t, root)
			tmp := filepath.Join(root, "tmp")
			os.Mkdir(tmp, 0o700)
			dir, fellBack, err := StateDir(configured, tmp, uid)
			if err != nil {
				t.Fatal(err)
			}
			if fellBack == nil || !strings.HasPrefix(dir, tmp) {
				t.Errorf("StateDir = %s (fell back: %v), want the private dir under %s", dir, fellBack, tmp)
			}
		})
	}
	// The fallback dir itself is held to the same rules: a planted symlink
	// to a dir another user controls is refused, not followed.
	root := t.TempDir()
	tmp := filepath.Join(root, "tmp")
	os.Mkdir(tmp, 0o700)
	evil := filepath.Join(root, "evil")
	os.Mkdir(evil, 0o700)
	os.Chmod(evil, 0o777)
	os.Symlink(evil, filepath.Join(tmp, "dockhand-"+strconv.Itoa(uid)))
	if dir, _, err := StateDir("", tmp, uid); err == nil {
		t.Errorf("a fallback symlinked to a world-writable dir was used: %s", dir)
	}
	// A good state dir is used as it is.
	good := filepath.Join(root, "good")
	if dir, fellBack, err := StateDir(good, tmp, uid); err != nil || fellBack != nil || dir != good {
		t.Errorf("StateDir(%s) = %s, %v, %v", good, dir, fellBack, err)
	}
}

// A full disk under an existing state_dir: the job runs, on the private dir
// under TMPDIR, as docs/operations.md promises, and the log says why.
// (A tmpfs of 64 KiB, filled, is the full disk: mounting it needs root, as
// `make test` has.)
func TestDefect07_FullDiskFallsBackToTmpdir(t *testing.T) {
	harness.NeedRoot(t, "mounting the full tmpfs needs root")
	root := t.TempDir()
	full := filepath.Join(root, "full")
	os.Mkdir(full, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", full).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", full).Run() })
	state := filepath.Join(full, "state")
	os.Mkdir(state, 0o700)
	os.WriteFile(filepath.Join(full, "filler"), make([]byte, 256<<10), 0o600) // ENOSPC part-way: the disk is full
	bin := filepath.Join(root, "bin")
	os.Mkdir(bin, 0o700)
	// The real bootstrap's stand-in: it checks it got a job dir.
	os.WriteFile(filepath.Join(bin, "buildkite-agent"), []byte("#!/bin/sh\ntest -d \"$DOCKHAND_JOB_DIR\" || exit 3\nexit 7\n"), 0o700)
	tmp := filepath.Join(root, "tmp")
	os.Mkdir(tmp, 0o700)
	cfg := config.Default("")
	cfg.StateDir, cfg.Builders, cfg.Cache.Mode = state, nil, config.CacheOff
	var log strings.Builder
	exit, err := Run(Options{Env: agentenv.FromMap(map[string]string{"BUILDKITE_JOB_ID": "j1", "PATH": bin + ":/usr/bin:/bin", "TMPDIR": tmp}),
		Config: cfg, Self: filepath.Join(bin, "dockhand"), Log: &log, UID: os.Getuid()})
	if err != nil || exit.Code != 7 {
		t.Fatalf("Run = %+v, %v; want the job's own exit 7 (log:\n%s)", exit, err, log.String())
	}
	if !strings.Contains(log.String(), "state dir "+state+" not usable") || !strings.Contains(log.String(), "using "+filepath.Join(tmp, "dockhand-0")) {
		t.Errorf("log does not say it fell back to TMPDIR:\n%s", log.String())
	}
}

// asUser runs a shell command as uid/gid (the test runs as root) and
// returns whether it succeeded and its output.
func asUser(t *testing.T, uid int, script string) (bool, string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	return err == nil, string(out)
}

// Where the OS draws a line, dockhand keeps to it: another agent user can
// neither list nor read a job's dir. For jobs of the same user (no OS line:
// docs/credentials.md says so), a job cannot find another's dir by listing
// STATE/jobs, and cannot guess its name (128 random bits).
func TestDefect08_JobDirsOfOtherJobs(t *testing.T) {
	harness.NeedRoot(t, "running as the agent users needs root")
	const agent, other = 65534, 65533
	root := t.TempDir()
	os.Chmod(filepath.Dir(root), 0o755) // the users must reach the state dir
	os.Chmod(root, 0o755)
	state := filepath.Join(root, "state")
	os.Mkdir(state, 0o700)
	j, err := CreateJobDir(t.Context(), state, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(j.Path, "credentials.json"), []byte(`{"secret":"s3cret"}`), 0o600)
	filepath.Walk(state, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, agent, agent) })
	if ok, out := asUser(t, agent, "ls -a "+filepath.Join(state, "jobs")); ok {
		t.Errorf("another job of the agent user listed STATE/jobs:\n%s", out)
	}
	if ok, out := asUser(t, agent, "find "+state+" -name credentials.json"); strings.Contains(out, "credentials.json") && ok {
		t.Errorf("find as the agent user found the job's store:\n%s", out)
	}
	suffix := filepath.Base(j.Path)[len("job-a-"):]
	if len(suffix) < 32 {
		t.Errorf("job dir suffix %q: fewer than 128 random bits", suffix)
	}
	if ok, out := asUser(t, other, "cat "+filepath.Join(j.Path, "credentials.json")+"; ls "+j.Path); ok || strings.Contains(out, "s3cret") {
		t.Errorf("another agent user read the job's dir:\n%s", out)
	}
	// The agent user's own job still has its dir, and the sweep still works.
	if ok, out := asUser(t, agent, "cat "+filepath.Join(j.Path, "credentials.json")); !ok || !strings.Contains(out, "s3cret") {
		t.Errorf("the job cannot read its own store: %s", out)
	}
	j.lock.Close()
	if removed, err := Sweep(t.Context(), state); err != nil || len(removed) != 1 {
		t.Errorf("Sweep = %q, %v", removed, err)
	}
}
