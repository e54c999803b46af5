package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/bootstrap"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// Regression tests for the defects of issue 12 that show in the dockhand
// binary, each named for its number there.

// buildDockhand returns a dockhand binary in dir: a copy of DOCKHAND_BIN
// (what `make test` built), else one built from this package.
func buildDockhand(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "dockhand")
	if built := os.Getenv("DOCKHAND_BIN"); built != "" {
		data, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o700); err != nil {
			t.Fatal(err)
		}
		return bin
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// DOCKHAND_REAL_BUILDX pointing at dockhand (a link to it, or a copy) ends
// in a bounded time with a line naming the variable, never an exec loop.
func TestDefect15_RealBuildxPointingAtDockhand(t *testing.T) {
	dir := t.TempDir()
	bin := buildDockhand(t, dir)
	plugins := filepath.Join(dir, "cli-plugins")
	os.Mkdir(plugins, 0o700)
	shim := filepath.Join(plugins, "docker-buildx")
	if err := os.Symlink(bin, shim); err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(dir, "copy")
	os.Mkdir(copyDir, 0o700)
	data, _ := os.ReadFile(bin)
	cp := filepath.Join(copyDir, "docker-buildx")
	os.WriteFile(cp, data, 0o700)
	for name, target := range map[string]string{"the shim itself": shim, "dockhand": bin, "a copy of dockhand": cp} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, shim, "buildx", "version")
			// No HOME: the search for the real plugin is the system dirs only.
			cmd.Env = []string{"PATH=/usr/bin:/bin", "DOCKHAND_REAL_BUILDX=" + target, "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker"}
			out, _ := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("still running after 10s: an exec loop (output %q)", out)
			}
			if !strings.Contains(string(out), "DOCKHAND_REAL_BUILDX") {
				t.Errorf("output %q does not name DOCKHAND_REAL_BUILDX", out)
			}
		})
	}
}

// A SIGKILLed `dockhand bootstrap` (the OOM killer, the agent's SIGKILL after
// its grace period) does not leave the job running unowned: the real
// bootstrap gets SIGTERM and cancels its command, and until the last of
// them is gone they hold the job dir's lock, so the next job's sweep does
// not pull the dir from under them.
func TestDefect06_SIGKILLedBootstrap(t *testing.T) {
	dir := t.TempDir()
	bin := buildDockhand(t, dir)
	fifo := func(name string) string {
		p := filepath.Join(dir, name)
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ready, release := fifo("ready"), fifo("release")
	cmdPid := filepath.Join(dir, "cmd.pid")
	agentDir := filepath.Join(dir, "agent")
	os.Mkdir(agentDir, 0o700)
	// The real bootstrap's stand-in: runs a long command; on SIGTERM it
	// waits to be released (its cancel grace period), then ends it. The
	// signal may come more than once (the kernel sends it again as each of
	// the dying dockhand's threads the child was handed to ends); like the
	// agent's bootstrap, it cancels once.
	os.WriteFile(filepath.Join(agentDir, "buildkite-agent"), []byte(`#!/bin/sh
sleep 300 & cmd=$!
echo $$ >`+cmdPid+`.boot
echo $cmd >`+cmdPid+`
trap 'trap "" TERM; read x <`+release+`; kill $cmd; exit 143' TERM
echo up >`+ready+`
wait $cmd
`), 0o700)
	state := filepath.Join(dir, "state")
	cfgFile := filepath.Join(dir, "dockhand.toml")
	os.WriteFile(cfgFile, []byte("state_dir = \""+state+"\"\nbuilders = [\"local\"]\nbuilders_optional = true\n[cache]\nmode = \"off\"\n"), 0o600)
	boot := exec.Command(bin, "bootstrap", "--config", cfgFile)
	boot.Env = []string{"BUILDKITE_JOB_ID=j6", "PATH=" + agentDir + ":/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir}
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(ready); err != nil { // the command runs
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cmdPid)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	jobDirs, _ := filepath.Glob(filepath.Join(state, "jobs", "j6-*"))
	if len(jobDirs) != 1 {
		t.Fatalf("job dirs = %q", jobDirs)
	}
	boot.Process.Kill()
	boot.Wait()
	// The next job on the host sweeps while the command still runs.
	if removed, err := bootstrap.Sweep(t.Context(), state); err != nil || len(removed) != 0 {
		t.Errorf("the sweep removed %q (%v) while the job's command ran", removed, err)
	}
	released := make(chan error, 1)
	go func() { released <- os.WriteFile(release, []byte("go\n"), 0) }() // blocks until the stand-in got SIGTERM
	select {
	case err := <-released:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		os.OpenFile(release, os.O_RDONLY|syscall.O_NONBLOCK, 0) // unblock the writer
		t.Fatal("the real bootstrap got no SIGTERM within 10s of dockhand's death")
	}
	if !harness.WaitGone(strconv.Itoa(pid), 10*time.Second) {
		t.Fatalf("the job's command (pid %d) still runs 10s after its cancel", pid)
	}
	standIn, _ := os.ReadFile(cmdPid + ".boot")
	if !harness.WaitGone(strings.TrimSpace(string(standIn)), 10*time.Second) {
		t.Fatalf("the real bootstrap (pid %s) still runs 10s after ending its command", standIn)
	}
	if removed, err := bootstrap.Sweep(t.Context(), state); err != nil || len(removed) != 1 {
		t.Errorf("once the job was gone, the sweep removed %q (%v), want its dir", removed, err)
	}
}

// doctor reports, as errors, what makes a host's state dir unsafe or stuck:
// a dir writable by others (or not the agent user's), and a lock a stuck
// process holds, naming its pid.
func TestDoctorReportsStateDirProblems(t *testing.T) {
	root := t.TempDir()
	state := filepath.Join(root, "state")
	os.MkdirAll(filepath.Join(state, "tokens"), 0o700)
	cfg := filepath.Join(root, "dockhand.toml")
	os.WriteFile(cfg, []byte("state_dir = \""+state+"\"\nbuilders = [\"local\"]\n"), 0o600)
	doctor := func() (int, string, string) {
		var out, errb strings.Builder
		code := run([]string{"dockhand", "doctor", "--config", cfg}, []string{"PATH=/usr/bin:/bin"}, stdio{in: strings.NewReader(""), out: &out, err: &errb})
		return code, out.String(), errb.String()
	}
	if code, out, errb := doctor(); code != 0 || !strings.Contains(out, "state: "+state+": ok") {
		t.Fatalf("a good state dir: exit %d\n%s\n%s", code, out, errb)
	}
	os.Chmod(state, 0o777)
	if code, out, _ := doctor(); code == 0 || !strings.Contains(out, "writable by its group or by others") {
		t.Errorf("a world-writable state dir: exit %d\n%s", code, out)
	}
	os.Chmod(state, 0o700)
	lock := filepath.Join(state, "tokens", "ecr.json.lock")
	f, _ := os.OpenFile(lock, os.O_CREATE|os.O_RDWR, 0o600)
	defer f.Close()
	syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	if code, out, _ := doctor(); code == 0 || !strings.Contains(out, lock) || !strings.Contains(out, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("a stuck lock: exit %d\n%s", code, out)
	}
}
