package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

type shellResult struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal
}

func runShell(t *testing.T, argv []string, dir, stdin string, env []string) shellResult {
	t.Helper()
	return runShellAs(t, nil, argv, dir, stdin, env)
}

// runShellAs is runShell as user u (nil: as the test). A command that
// cannot be run fails t with Errorf, not Fatalf, and returns exit code -1:
// tests call it from goroutines of their own, where FailNow would end the
// goroutine and leave the test waiting for its result.
func runShellAs(t *testing.T, u *harness.User, argv []string, dir, stdin string, env []string) shellResult {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	}
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Errorf("running %q: %v", argv, err)
		return shellResult{stdout: out.String(), stderr: errb.String() + err.Error(), code: -1}
	}
	r := shellResult{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.signal = ws.Signal()
	}
	return r
}

// TestShellBehavesAsBash runs each command through `dockhand shell -e -c` and
// `/bin/bash -e -c` and wants the same stdout, stderr and end.
func TestShellBehavesAsBash(t *testing.T) {
	t.Parallel()
	bin := harness.DockhandBin(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "script.sh"), "#!/bin/bash\necho \"script args: $#\"\necho from-script >&2\nexit 7\n")
	os.Chmod(filepath.Join(dir, "script.sh"), 0o755)
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "DOCKHAND_CONFIG=" + filepath.Join(dir, "none.toml")}
	// DOCKHAND_CONFIG names a missing file outside a job: dockhand says so and
	// still runs the default shell, so stderr is compared without that line.
	env[2] = "LANG=C"
	for _, tc := range []struct {
		name, command, stdin string
	}{
		{"stdout and stderr", "echo out; echo err >&2", ""},
		{"set -e stops at a failure", "echo before; false; echo not-reached", ""},
		{"exit 130", "exit 130", ""},
		{"killed by SIGINT", "echo going; kill -INT $$; echo survived", ""},
		{"killed by SIGTERM", "kill -TERM $$", ""},
		{"script form", "./script.sh", ""},
		{"multi-line command", "echo one\n\nif true; then\n  echo two\nfi\nexit 4", ""},
		{"stdin", "read line; echo \"got $line\"", "hello from stdin\n"},
		{"arguments and $0", "echo \"$0\" \"$-\"", ""},
		{"quotes survive", `printf '%s|' "a b" 'c"d' $'e\tf'`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := runShell(t, []string{"/bin/bash", "-e", "-c", tc.command}, dir, tc.stdin, env)
			got := runShell(t, []string{bin, "shell", "-e", "-c", tc.command}, dir, tc.stdin, env)
			if got != want {
				t.Errorf("dockhand shell = %+v\n/bin/bash      = %+v", got, want)
			}
		})
	}
}

// TestShellRestoresTheJobDockerConfig: a hook pointed DOCKER_CONFIG at its
// own temp dir; the shell puts the job's back, says so once, and keeps the
// hook's logins.
func TestShellRestoresTheJobDockerConfig(t *testing.T) {
	t.Parallel()
	bin := harness.DockhandBin(t)
	jobDir := t.TempDir()
	os.MkdirAll(filepath.Join(jobDir, "docker"), 0o700)
	writeFile(t, filepath.Join(jobDir, "docker", "config.json"), `{"credsStore":"dockhand"}`)
	writeFile(t, filepath.Join(jobDir, "job.json"), `{"shell":"/bin/bash"}`)
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "config.json"), `{"auths":{"r.example:5000":{"auth":"dTpwYXNzd29yZA=="}}}`)
	env := []string{"PATH=/usr/bin:/bin", "BUILDKITE_JOB_ID=j1", "DOCKHAND_JOB_DIR=" + jobDir, "DOCKER_CONFIG=" + other}
	r := runShell(t, []string{bin, "shell", "-e", "-c", `echo "$DOCKER_CONFIG"`}, jobDir, "", env)
	if r.code != 0 || strings.TrimSpace(r.stdout) != filepath.Join(jobDir, "docker") {
		t.Fatalf("command saw DOCKER_CONFIG=%q (exit %d, stderr %q), want the job's", r.stdout, r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "\n"); n != 1 || !strings.Contains(r.stderr, "restored the job's docker config") || !strings.Contains(r.stderr, "r.example:5000") {
		t.Errorf("stderr = %q, want one line saying what was restored and carried over", r.stderr)
	}
	if strings.Contains(r.stderr, "password") {
		t.Errorf("stderr leaks the secret: %q", r.stderr)
	}
	store, _ := os.ReadFile(filepath.Join(jobDir, "credentials.json"))
	if !strings.Contains(string(store), `"secret": "password"`) {
		t.Errorf("the hook's login was not carried into the job store: %s", store)
	}
}
