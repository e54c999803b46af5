package packer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestBuildkitdDrainWaitsForBuilds: buildkitd.service's ExecStop, against a
// real buildkitd, returns only once the build in flight has finished and the
// node has been quiet for BUILDKITD_DRAIN_QUIET; with a build that outlasts
// BUILDKITD_DRAIN_TIMEOUT it gives up at the bound, saying so; with buildkitd
// gone it returns at once. It never fails the stop.
func TestBuildkitdDrainWaitsForBuilds(t *testing.T) {
	kit := harness.Start(t, harness.Options{})
	b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "drained", InsecureRegistries: []string{kit.Registry.Host}})
	if err != nil {
		t.Fatal(err)
	}
	drain := filepath.Join(harness.MustRepoRoot(t), "packer/files/buildkitd/buildkitd-drain")
	env := []string{"BUILDKITD_SOCKET=" + strings.TrimPrefix(b.Addr, "unix://"), "BUILDKITD_BUILDCTL=" + tool(t, "buildctl"),
		"BUILDKITD_DRAIN_TAG=false", "BUILDKITD_DRAIN_QUIET=1", "BUILDKITD_DRAIN_POLL=1"}
	// build starts a build that runs for secs, and returns once buildkitd
	// lists it as active, with a channel that says when it ended.
	build := func(secs string) chan error {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "Dockerfile"), "FROM "+kit.BaseImage+"\nRUN sleep "+secs+"\n", 0o644)
		cmd := kit.Command(dir, nil, "buildctl", "--addr", b.Addr, "build", "--frontend", "dockerfile.v0", "--local", "context=.", "--local", "dockerfile=.")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for deadline := time.Now().Add(30 * time.Second); ; {
			out, _ := kit.Command(kit.Dir, nil, "buildctl", "--addr", b.Addr, "debug", "histories", "--format", "{{.Type}}").Output()
			if strings.Contains(string(out), "STARTED") {
				return done
			}
			if time.Now().After(deadline) {
				t.Fatalf("the build never showed as active:\n%s", out)
			}
			time.Sleep(50 * time.Millisecond) // polling buildkitd for the condition
		}
	}

	done := build("4")
	start := time.Now()
	out, code := run(t, append(env, "BUILDKITD_DRAIN_TIMEOUT=120"), "bash", drain)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the build failed: %v", err)
		}
	default:
		t.Errorf("the drain returned after %s while the build still ran:\n%s", time.Since(start), out)
	}
	if code != 0 || !strings.Contains(out, "buildkitd-drain: drained: no build for ") {
		t.Errorf("drain: exit %d\n%s", code, out)
	}

	// A build longer than the bound: the drain gives up at it.
	done = build("60")
	start = time.Now()
	out, code = run(t, append(env, "BUILDKITD_DRAIN_TIMEOUT=2"), "bash", drain)
	if took := time.Since(start); code != 0 || took > 20*time.Second || !strings.Contains(out, "gave up after 2s (BUILDKITD_DRAIN_TIMEOUT) with 1 build(s) still active") {
		t.Errorf("drain past its bound: exit %d after %s\n%s", code, took, out)
	}
	select {
	case err := <-done:
		t.Errorf("the long build ended before the drain gave up: %v", err)
	default:
	}

	// Nothing to wait for when buildkitd is gone (the build fails with it).
	b.Stop()
	<-done
	out, code = run(t, append(env, "BUILDKITD_DRAIN_TIMEOUT=120", "BUILDKITD_DRAIN_QUIET=abc"), "bash", drain)
	if code != 0 || !strings.Contains(out, "does not answer") || !strings.Contains(out, "BUILDKITD_DRAIN_QUIET=abc is not a whole number") {
		t.Errorf("drain with buildkitd gone: exit %d\n%s", code, out)
	}
}

// TestBuildkitdLifecycleCompletesTheHook: with a hook name, the watcher
// waits while the instance is in service; when the metadata says the group
// is terminating it, it stops buildkitd (which drains it) and only then
// completes the hook, for its group and instance. Without a hook name it
// does nothing.
func TestBuildkitdLifecycleCompletesTheHook(t *testing.T) {
	imds := ecrapi.StartIMDS(t, "eu-west-1")
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	for name, body := range map[string]string{
		"systemctl": `echo "systemctl $*" >>` + calls,
		"aws": `echo "aws $*" >>` + calls + `
[[ $2 == describe-auto-scaling-instances ]] && echo builders-asg
exit 0`,
	} {
		writeFile(t, filepath.Join(bin, name), "#!/bin/bash\n"+body+"\n", 0o755)
	}
	script := filepath.Join(harness.MustRepoRoot(t), "packer/files/buildkitd/buildkitd-lifecycle")
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "BUILDKITD_IMDS=" + imds.URL, "BUILDKITD_LIFECYCLE_POLL=0.2"}

	if out, code := run(t, env, "bash", script); code != 0 || !strings.Contains(out, "BUILDKITD_LIFECYCLE_HOOK is not set") {
		t.Errorf("without a hook: exit %d\n%s", code, out)
	}
	type result struct {
		out  string
		code int
	}
	done := make(chan result, 1)
	go func() {
		out, code := run(t, append(env, "BUILDKITD_LIFECYCLE_HOOK=drain-buildkitd"), "bash", script)
		done <- result{out, code}
	}()
	select {
	case r := <-done:
		t.Fatalf("the watcher ended while the instance was in service: exit %d\n%s", r.code, r.out)
	case <-time.After(time.Second): // several polls of an instance in service
	}
	if _, err := os.Stat(calls); err == nil {
		t.Fatalf("the watcher acted while the instance was in service: %s", readFile(t, calls))
	}
	imds.SetLifecycleState("Terminated")
	r := <-done
	want := "systemctl stop buildkitd.service\n" +
		"aws autoscaling describe-auto-scaling-instances --region eu-west-1 --instance-ids " + ecrapi.IMDSInstanceID + " --query AutoScalingInstances[0].AutoScalingGroupName --output text\n" +
		"aws autoscaling complete-lifecycle-action --region eu-west-1 --auto-scaling-group-name builders-asg --lifecycle-hook-name drain-buildkitd --instance-id " + ecrapi.IMDSInstanceID + " --lifecycle-action-result CONTINUE\n"
	if r.code != 0 || readFile(t, calls) != want || !strings.Contains(r.out, "completed lifecycle hook drain-buildkitd of builders-asg for "+ecrapi.IMDSInstanceID) {
		t.Errorf("on termination: exit %d\n%s\ncalls:\n%s\nwant:\n%s", r.code, r.out, readFile(t, calls), want)
	}
}
