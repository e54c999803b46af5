// Command demo is `make demo`: a real Buildkite job, run by the real
// buildkite-agent (against dockhand's fake Agent API) with dockhand as its
// bootstrap and shell, builds and pushes an image on a local buildkitd and
// registry that the demo starts itself. A second job on a second, empty
// buildkitd builds the same image from the registry cache the first left.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/test/agentapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func say(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }

func run() error {
	dir, err := os.MkdirTemp("", "dockhand-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kit, err := harness.New(dir)
	if err != nil {
		return err
	}
	defer kit.Close()
	dockhand, err := harness.Dockhand()
	if err != nil {
		return err
	}
	defer harness.CleanupDockhand()

	say("starting a local registry and buildkitd (OCI worker, runc) under %s", dir)
	reg, err := kit.StartRegistry(harness.RegistryOptions{})
	if err != nil {
		return err
	}
	first, err := kit.StartBuildkitd("buildkitd-1", reg.Host)
	if err != nil {
		return err
	}
	base, err := kit.PushBaseImage(first, reg)
	if err != nil {
		return err
	}
	api, err := agentapi.Start()
	if err != nil {
		return err
	}
	defer api.Close()
	say("registry %s, base image %s, fake Agent API %s", reg.Host, base, api.Endpoint)

	state := filepath.Join(dir, "state")
	config := filepath.Join(dir, "dockhand.toml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf("state_dir = %q\n", state)), 0o600); err != nil {
		return err
	}
	userDocker := filepath.Join(dir, "agent-home", ".docker")
	if err := os.MkdirAll(filepath.Join(userDocker, "cli-plugins"), 0o700); err != nil {
		return err
	}
	if err := os.Symlink(kit.Bin("docker-buildx"), filepath.Join(userDocker, "cli-plugins", "docker-buildx")); err != nil {
		return err
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}

	image := reg.Host + "/demo/app:latest"
	cache := reg.Host + "/demo/cache:main"
	job := func(n int, b *harness.Buildkitd) (string, time.Duration, error) {
		command := fmt.Sprintf(`printf 'FROM %s\nRUN echo "compiling dependencies (the slow step)" && sleep 3 && echo deps > /deps\nCOPY app.txt /app.txt\n' > Dockerfile
echo "hello from job %d" > app.txt
docker buildx create --name demo --driver remote %s >/dev/null
docker buildx build --builder demo --progress plain --push -t %s \
  --cache-from type=registry,ref=%s --cache-to type=registry,ref=%s,mode=max,ignore-error=true .`,
			base, n, b.Addr, image, cache, cache)
		id := agentapi.NewJobID()
		api.AddJob(agentapi.Job{ID: id, Env: agentapi.MinimalEnv(id, command)})
		agentDir := filepath.Join(dir, fmt.Sprintf("agent-%d", n))
		args := api.AgentArgs(agentDir, id,
			"--bootstrap-script", dockhand+" bootstrap --config "+config,
			"--shell", dockhand+" shell -e -c",
			"--additional-hooks-paths", filepath.Join(root, "hooks"),
			"--no-pty", "--no-ansi-timestamps")
		say("job %d: buildkite-agent start --acquire-job %s --bootstrap-script 'dockhand bootstrap' --shell 'dockhand shell -e -c'", n, id)
		start := time.Now()
		p, err := kit.Start(fmt.Sprintf("agent-%d", n), []string{
			"HOME=" + filepath.Join(dir, "agent-home"), "TMPDIR=" + dir, "DOCKER_CONFIG=" + userDocker,
		}, append([]string{kit.Bin("buildkite-agent")}, args...)...)
		if err != nil {
			return "", 0, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		f, err := api.WaitFinish(ctx, id)
		took := time.Since(start)
		p.Wait()
		log := api.PlainLog(id)
		if err != nil {
			return log, took, err
		}
		if f.ExitStatus != "0" {
			return log, took, fmt.Errorf("job %d finished with exit status %s:\n%s", n, f.ExitStatus, log)
		}
		return log, took, nil
	}
	// show prints dockhand's section of a job log and the cache lines, and
	// reports whether the slow RUN step really ran (its output is in the log)
	// or came from the cache.
	ranStep := regexp.MustCompile(`^#\d+ [0-9.]+ compiling dependencies`)
	show := func(log string) (ran bool) {
		for _, line := range strings.Split(log, "\n") {
			switch {
			case strings.HasPrefix(line, "--- :docker: dockhand"), strings.HasPrefix(line, "dockhand: "),
				strings.Contains(line, "importing cache manifest"), strings.Contains(line, "exporting cache to registry"):
				fmt.Println("    " + line)
			case ranStep.MatchString(line):
				ran = true
				fmt.Println("    " + line)
			}
		}
		return ran
	}
	verdict := map[bool]string{true: "the slow RUN step ran", false: "the slow RUN step came from the registry cache"}

	log1, t1, err := job(1, first)
	if err != nil {
		return err
	}
	ran1 := show(log1)
	say("job 1 on an empty builder: %s, %s; image pushed to %s", t1.Round(time.Millisecond), verdict[ran1], image)

	second, err := kit.StartBuildkitd("buildkitd-2", reg.Host)
	if err != nil {
		return err
	}
	log2, t2, err := job(2, second)
	if err != nil {
		return err
	}
	ran2 := show(log2)
	say("job 2 on another empty builder: %s, %s", t2.Round(time.Millisecond), verdict[ran2])
	if !ran1 || ran2 {
		return fmt.Errorf("the cache did not work as expected (job 1 ran the step: %v, job 2 ran it: %v)", ran1, ran2)
	}
	if left, _ := os.ReadDir(filepath.Join(state, "jobs")); len(left) > 1 { // .lock only
		return fmt.Errorf("job dirs left behind in %s", state)
	}
	say("each job had its own DOCKER_CONFIG under %s/jobs, removed when the job ended", state)
	say("today the jobs pass the builder and cache flags themselves; with the builder and cache issues")
	say("dockhand picks the builder and injects those flags into a plain 'docker buildx build'")
	return nil
}
