package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/buildkite/shellwords"
	"github.com/dockhand-ci/dockhand/test/agentapi"
	"github.com/dockhand-ci/dockhand/test/harness"
	"github.com/dockhand-ci/dockhand/test/unitfile"
)

// stackAgentConfig is buildkite-agent.cfg as the Elastic CI Stack writes it
// at every boot (one queue per stack, its tags and grace periods), which
// sets neither bootstrap-script, shell nor additional-hooks-paths.
const stackAgentConfig = `name="stack-i-0123456789abcdef0-%spawn"
tags="queue=docker-builds,docker=true,stack=ci-stack,buildkite-aws-stack=v6.71.1"
tags-from-ec2-meta-data=false
no-color=true
timestamp-lines=false
cancel-grace-period=60
signal-grace-period-seconds=-1
`

// installAgentRoot runs install-dockhand.sh into a throwaway root with the
// dockhand under test, relocates the installed config's state dir into that
// root, and returns the root and the drop-in's environment with every
// installed path it names relocated there too.
func installAgentRoot(t *testing.T, queueSection string) (string, []string) {
	t.Helper()
	root := harness.MustRepoRoot(t)
	dest := filepath.Join(t.TempDir(), "root")
	cmd := exec.Command("bash", filepath.Join(root, "packer/scripts/install-dockhand.sh"),
		"--destdir", dest, "--from", filepath.Dir(harness.DockhandBin(t)), "--user", fmt.Sprint(os.Getuid()), "--group", fmt.Sprint(os.Getgid()))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install-dockhand.sh: %v\n%s", err, out)
	}
	conf := filepath.Join(dest, "etc/dockhand/dockhand.toml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	const line = `state_dir = "/var/lib/dockhand"`
	if !strings.Contains(string(b), "\n"+line+"\n") {
		t.Fatalf("the installed config has no %s line", line)
	}
	relocated := strings.Replace(string(b), line, fmt.Sprintf("state_dir = %q", filepath.Join(dest, "var/lib/dockhand")), 1)
	writeFile(t, conf, relocated+queueSection)

	unit, err := unitfile.ReadFile(filepath.Join(dest, "etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := unit.Environment()
	if err != nil {
		t.Fatal(err)
	}
	for i, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		words, err := shellwords.Split(value)
		if err != nil {
			t.Fatal(err)
		}
		for j, w := range words {
			var parts []string
			for _, p := range strings.Split(w, ",") {
				if _, err := os.Stat(filepath.Join(dest, p)); strings.HasPrefix(p, "/") && err == nil {
					p = filepath.Join(dest, p)
				}
				parts = append(parts, p)
			}
			words[j] = strings.Join(parts, ",")
		}
		env[i] = name + "=" + strings.Join(words, " ")
	}
	return dest, env
}

// TestPackerDropInWiresTheRealAgent: the environment of the agent AMI's
// systemd drop-in, and nothing else, makes the real buildkite-agent (with a
// buildkite-agent.cfg as the Elastic CI Stack writes it) run its jobs through
// `dockhand bootstrap`, dockhand's hooks dir and `dockhand shell`, as installed
// by install-dockhand.sh. Without the drop-in the same agent and job do not.
func TestPackerDropInWiresTheRealAgent(t *testing.T) {
	t.Parallel()
	srv, err := agentapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	// The queue's real shell prints a marker: only `dockhand shell` runs it.
	realShell := filepath.Join(t.TempDir(), "queue-shell")
	writeFile(t, realShell, "#!/bin/bash\necho real-shell-from-queue-config\nexec /bin/bash \"$@\"\n")
	os.Chmod(realShell, 0o755)
	dest, dropIn := installAgentRoot(t, fmt.Sprintf("\n[queue.docker-builds]\nshell = %q\n", realShell))
	t.Logf("drop-in environment, relocated to %s: %q", dest, dropIn)
	for _, want := range []string{"BUILDKITE_BOOTSTRAP_SCRIPT_PATH=", "BUILDKITE_SHELL=", "BUILDKITE_ADDITIONAL_HOOKS_PATHS="} {
		if !slicesHasPrefix(dropIn, want) {
			t.Fatalf("the drop-in does not set %s: %q", want, dropIn)
		}
	}

	command := `echo "job-dir=$DOCKHAND_JOB_DIR"
echo "docker-config=$DOCKER_CONFIG"
echo stack.example | docker-credential-dockhand get >/dev/null && echo stack-login-carried
true`
	runJob := func(env []string) (agentapi.Finish, string, string) {
		t.Helper()
		dir := shortDir(t)
		writeFile(t, filepath.Join(dir, "agent.cfg"), stackAgentConfig)
		// The stack's global hooks: a fresh DOCKER_CONFIG with a login in
		// the environment hook, removed by pre-exit; a pre-command that
		// points DOCKER_CONFIG elsewhere again, as a plugin might.
		hooks := filepath.Join(dir, "hooks")
		hook(t, hooks, "environment", `set -euo pipefail
export BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY="$(mktemp -d)"
export DOCKER_CONFIG="$BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY"
printf '{"auths":{"stack.example":{"auth":"%s"}}}' "$(printf ci:stack-pw | base64)" >"$DOCKER_CONFIG/config.json"
`)
		hook(t, hooks, "pre-command", `export DOCKER_CONFIG="$(mktemp -d)"
echo "late-docker-config=$DOCKER_CONFIG"
`)
		hook(t, hooks, "pre-exit", `rm -rf "$BUILDKITE_DOCKER_CONFIG_TEMP_DIRECTORY"`)
		id := agentapi.NewJobID()
		jobEnv := agentapi.MinimalEnv(id, command)
		jobEnv["BUILDKITE_AGENT_META_DATA_QUEUE"] = "docker-builds"
		srv.AddJob(agentapi.Job{ID: id, Env: jobEnv})
		args := srv.AgentArgs(dir, id)
		for _, a := range args {
			if strings.Contains(a, "bootstrap-script") || a == "--shell" || strings.Contains(a, "additional-hooks") {
				t.Fatalf("the agent's arguments already wire %s: %q", a, args)
			}
		}
		agent := harness.StartAgent(t, args, env...)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		f, err := srv.WaitFinish(ctx, id)
		if err != nil {
			t.Fatalf("job %s: %v\nlog:\n%s\nagent:\n%s", id, err, srv.PlainLog(id), agent.Output())
		}
		if _, err := agent.Wait(ctx); err != nil {
			t.Fatalf("agent: %v", err)
		}
		return f, srv.PlainLog(id), agent.Output()
	}

	f, log, agentOut := runJob(dropIn)
	if f.ExitStatus != "0" {
		t.Fatalf("exit_status %q, want 0\n%s\nagent:\n%s", f.ExitStatus, log, agentOut)
	}
	jobs := filepath.Join(dest, "var/lib/dockhand/jobs") + "/"
	jobDir := regexp.MustCompile(`(?m)^job-dir=(.*)$`).FindStringSubmatch(log)
	for _, want := range []string{
		"--- :docker: dockhand",            // dockhand bootstrap, the drop-in's bootstrap-script
		"dockhand: job dir " + jobs,        // in the installed state dir, per the installed config
		"carried over: stack.example",      // dockhand's hooks dir, the drop-in's additional-hooks-paths
		"restored the job's docker config", // dockhand shell, the drop-in's shell
		"\nreal-shell-from-queue-config",   // ... running the installed config's queue section's shell
		"\nstack-login-carried",            // the job's credential helper has the stack's login
		"docker-config=" + jobs,            // and the command sees the job's docker config
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the job log lacks %q:\n%s", want, log)
		}
	}
	if jobDir == nil || !strings.HasPrefix(jobDir[1], jobs) || !strings.Contains(log, "docker-config="+jobDir[1]+"/docker\n") {
		t.Errorf("the command did not run in a dockhand job dir under %s with its docker config:\n%s", jobs, log)
	}
	if entries, _ := os.ReadDir(jobs); len(entries) != 1 || entries[0].Name() != ".lock" {
		t.Errorf("job dirs left in the installed state dir (only its .lock belongs there): %v", entries)
	}

	// The same agent, cfg and job without the drop-in's environment: the
	// stack's wiring alone never reaches dockhand.
	f, log, _ = runJob(nil)
	if f.ExitStatus != "0" || strings.Contains(log, ":docker: dockhand") || strings.Contains(log, "real-shell-from-queue-config") ||
		!strings.Contains(log, "\njob-dir=\n") || strings.Contains(log, "\nstack-login-carried") {
		t.Errorf("without the drop-in the job still went through dockhand (or failed: exit %q):\n%s", f.ExitStatus, log)
	}
}

func slicesHasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
