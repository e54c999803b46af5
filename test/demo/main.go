// Command demo is `make demo`: two real Buildkite jobs, run by the real
// buildkite-agent (against dockhand's fake Agent API) with dockhand as
// bootstrap and shell, each on its own "host" (its own dockhand state dir and
// so its own embedded buildkitd), run the same plain
// `docker buildx build --push -t IMAGE .`. dockhand picks the builder and
// injects the registry cache flags; the second host, with an empty builder,
// takes the slow step from the cache the first host exported.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/builder/embedded"
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
	seeded, err := kit.StartEnv(harness.Options{})
	if err != nil {
		return err
	}
	reg, base := seeded.Registry, seeded.BaseImage
	api, err := agentapi.Start()
	if err != nil {
		return err
	}
	defer api.Close()
	say("registry %s, base image %s, fake Agent API %s", reg.Host, base, api.Endpoint)

	// The embedded buildkitd reaches the demo's plain-HTTP registry.
	bkConfig := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(bkConfig, []byte(fmt.Sprintf("[registry.%q]\n  http = true\n", reg.Host)), 0o600); err != nil {
		return err
	}
	// host returns the dockhand configuration of one demo host.
	host := func(n int) (state, config string, err error) {
		state = filepath.Join(dir, fmt.Sprintf("host-%d", n), "state")
		config = filepath.Join(dir, fmt.Sprintf("host-%d", n), "dockhand.toml")
		if err := os.MkdirAll(filepath.Dir(config), 0o700); err != nil {
			return "", "", err
		}
		toml := fmt.Sprintf(`state_dir = %q
builders = ["embedded"]

[embedded]
config = %q

[cache]
backend = "registry"
repository = "%s/dockhand-cache"
`, state, bkConfig, reg.Host)
		return state, config, os.WriteFile(config, []byte(toml), 0o600)
	}
	// Stop the hosts' embedded buildkitd daemons (they outlive jobs by design).
	var states []string
	defer func() {
		for _, st := range states {
			if b, err := os.ReadFile(filepath.Join(embedded.Dir(st), embedded.PidFile)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					_ = harness.StopPid(pid, 10*time.Second)
				}
			}
			_ = harness.UnmountUnder(st)
		}
	}()
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

	// Host 2 runs its agent as the Elastic CI Stack does, as the unprivileged
	// buildkite-agent (uid 2000): its embedded buildkitd is rootless, under
	// rootlesskit. Only root can make that user; otherwise both hosts run as
	// the demo does.
	var stackUser *harness.User
	if os.Geteuid() == 0 {
		if stackUser, err = harness.StackUser(); err != nil {
			return err
		}
		for _, p := range []string{dir, dockhand, bkConfig} {
			if err := harness.Passable(p); err != nil {
				return err
			}
		}
		if err := os.Chmod(bkConfig, 0o644); err != nil {
			return err
		}
	}

	image := reg.Host + "/demo/app:latest"
	job := func(n int) (string, time.Duration, error) {
		state, config, err := host(n)
		if err != nil {
			return "", 0, err
		}
		states = append(states, state)
		var as *harness.User
		if n == 2 {
			as = stackUser
		}
		command := fmt.Sprintf(`printf 'FROM %s\nRUN echo "compiling dependencies (the slow step)" && sleep 3 && echo deps > /deps\nCOPY app.txt /app.txt\n' > Dockerfile
echo "hello from job %d" > app.txt
docker buildx build --progress plain --push -t %s .`, base, n, image)
		id := agentapi.NewJobID()
		api.AddJob(agentapi.Job{ID: id, Env: agentapi.MinimalEnv(id, command)})
		agentDir := filepath.Join(dir, fmt.Sprintf("agent-%d", n))
		args := api.AgentArgs(agentDir, id,
			"--bootstrap-script", dockhand+" bootstrap --config "+config,
			"--shell", dockhand+" shell -e -c",
			"--additional-hooks-paths", filepath.Join(root, "hooks"),
			"--no-pty", "--no-ansi-timestamps")
		who := "root"
		if as != nil {
			who = fmt.Sprintf("%s (uid %d, as on the Elastic CI Stack)", as.Name, as.UID)
		}
		say("job %d on host %d: buildkite-agent start --acquire-job %s --bootstrap-script 'dockhand bootstrap' --shell 'dockhand shell -e -c', as %s", n, n, id, who)
		say("job %d runs: docker buildx build --progress plain --push -t %s .", n, image)
		start := time.Now()
		agentEnv := []string{"HOME=" + filepath.Join(dir, "agent-home"), "TMPDIR=" + dir, "DOCKER_CONFIG=" + userDocker}
		argv := append([]string{kit.Bin("buildkite-agent")}, args...)
		var p interface{ Wait() int }
		if as == nil {
			p, err = kit.Start(fmt.Sprintf("agent-%d", n), agentEnv, argv...)
		} else {
			p, err = startAs(as, kit, filepath.Join(dir, fmt.Sprintf("host-%d", n)), agentDir, fmt.Sprintf("agent-%d", n), argv)
		}
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
			case strings.HasPrefix(line, "dockhand: cache: ") && strings.Contains(line, " during this job: "):
				// BuildKit's own count: steps whose layers came from the
				// registry cache to be pushed are not marked CACHED, so the
				// demo's verdict below reads the RUN step's output instead.
			case strings.HasPrefix(line, "--- :docker: dockhand"), strings.HasPrefix(line, "dockhand: "),
				strings.Contains(line, "importing cache manifest"), strings.Contains(line, "exporting cache to registry"),
				strings.HasPrefix(line, "dockhand: cache"):
				fmt.Println("    " + line)
			case ranStep.MatchString(line):
				ran = true
				fmt.Println("    " + line)
			}
		}
		return ran
	}
	verdict := map[bool]string{true: "the slow RUN step ran", false: "the slow RUN step came from the registry cache"}

	log1, t1, err := job(1)
	if err != nil {
		return err
	}
	ran1 := show(log1)
	say("job 1 on host 1's empty builder: %s, %s; image pushed to %s", t1.Round(time.Millisecond), verdict[ran1], image)

	log2, t2, err := job(2)
	if err != nil {
		return err
	}
	ran2 := show(log2)
	say("job 2 on another host's empty builder: %s, %s", t2.Round(time.Millisecond), verdict[ran2])
	if !ran1 || ran2 {
		return fmt.Errorf("the cache did not work as expected (job 1 ran the step: %v, job 2 ran it: %v)", ran1, ran2)
	}
	for _, st := range states {
		if left, _ := os.ReadDir(filepath.Join(st, "jobs")); len(left) > 1 { // .lock only
			return fmt.Errorf("job dirs left behind in %s", st)
		}
	}
	say("the pipeline ran a plain 'docker buildx build'; dockhand chose the builder, injected the cache")
	say("flags, gave each job its own DOCKER_CONFIG and removed it when the job ended")
	return nil
}

// userAgent is an agent process started as another user.
type userAgent struct{ cmd *exec.Cmd }

func (a userAgent) Wait() int { _ = a.cmd.Wait(); return a.cmd.ProcessState.ExitCode() }

// startAs starts the agent argv as u: the host's dir and the agent's dir
// become u's, with a home of its own (the buildx plugin in its docker
// config) and its output in the kit's dir.
func startAs(u *harness.User, kit *harness.Kit, hostDir, agentDir, name string, argv []string) (userAgent, error) {
	home := filepath.Join(hostDir, "home")
	plugins := filepath.Join(home, ".docker", "cli-plugins")
	if err := os.MkdirAll(plugins, 0o700); err != nil {
		return userAgent{}, err
	}
	if err := os.Symlink(kit.Bin("docker-buildx"), filepath.Join(plugins, "docker-buildx")); err != nil && !os.IsExist(err) {
		return userAgent{}, err
	}
	if err := u.Chown(hostDir, agentDir); err != nil {
		return userAgent{}, err
	}
	logf, err := os.OpenFile(filepath.Join(kit.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return userAgent{}, err
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=" + kit.Path(), "HOME=" + home, "TMPDIR=" + home, "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}, u.Env()[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: u.Credential()}
	return userAgent{cmd}, cmd.Start()
}
