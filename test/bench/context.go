package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// contextStack is one way of running the same step twice on one host.
type contextStack struct {
	name string
	// build runs `cd CTX && echo N > changed.txt && docker buildx build`
	// as a job of that stack would, and returns its output.
	build func(ctx string, n int) (string, error)
}

// contextBench: the second build's context upload on one remote buildkitd
// (mTLS), one small file changed between two builds, for each context size:
// the plain stack (the agent user's persistent ~/.docker with a remote
// builder created once, the real buildx), dockhand (two jobs through
// `dockhand bootstrap` and the real `buildkite-agent bootstrap`), and
// dockhand with buildx's per-job node identity (what it did before, the
// node identity file removed at the start of each job).
func contextBench(dockhand, toolBin, dir string, sizesMB []int) error {
	kit, _, err := newKit(dir, "context")
	if err != nil {
		return err
	}
	defer kit.Close()
	fleet, err := kit.NewFleetTLS("fleet")
	if err != nil {
		return err
	}
	b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "context-node", TCP: true, TLS: &fleet.Server})
	if err != nil {
		return err
	}
	plain, err := plainContextStack(kit, toolBin, dir, b.TCPAddr, fleet.Client)
	if err != nil {
		return err
	}
	withID := dockhandContextStack(dockhand, toolBin, dir, "dockhand", b.TCPAddr, fleet.Client, "")
	perJob := dockhandContextStack(dockhand, toolBin, dir, "dockhand-per-job-id", b.TCPAddr, fleet.Client,
		`rm -f "$DOCKER_CONFIG/buildx/.buildNodeID"; `)

	fmt.Printf("\n| context, one file changed (%d later builds each, medians) | stack | 1st upload | later upload | later upload time | later build (step) | later upload vs plain | later build vs plain |\n|---|---|---|---|---|---|---|---|\n", contextRounds)
	stacks := []contextStack{plain, withID, perJob}
	for _, mb := range sizesMB {
		ctxs := make([]string, len(stacks))
		firsts := make([]harness.Transfer, len(stacks))
		later := make([][]harness.Transfer, len(stacks))
		steps := make([][]float64, len(stacks))
		// The stacks take turns, build after build, so each sees the same
		// machine and the builder's leftover work from the others' builds.
		for round := range contextRounds + 1 {
			for k, s := range stacks {
				if round == 0 {
					ctxs[k] = filepath.Join(dir, "contexts", fmt.Sprintf("stack-%d-%d", k, mb), "app")
					if err := randomContext(ctxs[k], mb); err != nil {
						return err
					}
				}
				out, err := s.build(ctxs[k], round+1)
				if err != nil {
					return fmt.Errorf("%s, %d MB, build %d: %w\n%s", s.name, mb, round+1, err, out)
				}
				t := harness.ContextTransfers(out)
				if len(t) != 1 {
					return fmt.Errorf("%s, %d MB, build %d: context uploads %+v in:\n%s", s.name, mb, round+1, t, out)
				}
				if round == 0 {
					firsts[k] = t[0]
					continue
				}
				later[k] = append(later[k], t[0])
				steps[k] = append(steps[k], stepSeconds(out))
			}
		}
		var plainBytes int64
		var plainStep float64
		for k, s := range stacks {
			tr, step := medianTransfer(later[k]), medianFloat(steps[k])
			if k == 0 {
				plainBytes, plainStep = tr.Bytes, step
			}
			fmt.Printf("| %d MB | %s | %s | %s | %.1f s | %.2f s | %s | %.2f× |\n", mb, s.name, size(firsts[k].Bytes), size(tr.Bytes),
				tr.Seconds, step, ratio(tr.Bytes, plainBytes), step/plainStep)
			os.RemoveAll(filepath.Dir(ctxs[k]))
		}
	}
	return alternatingBench(dockhand, toolBin, dir, plain, b.TCPAddr, fleet.Client)
}

// alternatingBench: two agents of one host take turns on one pipeline, each
// building its own checkout (the same files, written separately, so other
// mtimes), one small file changed each time: the plain stack's agents share
// the agent user's ~/.docker, dockhand's agents share the state dir.
func alternatingBench(dockhand, toolBin, dir string, plain contextStack, endpoint string, tls harness.TLSFiles) error {
	const mb = 50
	home := filepath.Join(dir, "alternating-home")
	dh := [2]contextStack{
		dockhandAgentStack(dockhand, toolBin, home, "dockhand", "bench-host-1", endpoint, tls, ""),
		dockhandAgentStack(dockhand, toolBin, home, "dockhand", "bench-host-2", endpoint, tls, ""),
	}
	stacks := []struct {
		name   string
		agents [2]contextStack
	}{{plain.name + " (shared by the agents)", [2]contextStack{plain, plain}}, {"dockhand", dh}}
	fmt.Printf("\n| two agents of one host taking turns, %d MB context, one file changed (%d turns each after the first, medians) | stack | 1st upload | later upload | later upload vs plain |\n|---|---|---|---|---|\n", mb, contextRounds)
	var plainBytes int64
	for k, s := range stacks {
		var ctxs [2]string
		var firsts, later []harness.Transfer
		for round := range contextRounds + 1 {
			for a := range 2 {
				if round == 0 {
					ctxs[a] = filepath.Join(dir, "alternating", fmt.Sprintf("stack-%d-agent-%d", k, a), "app")
					if err := randomContext(ctxs[a], mb); err != nil {
						return err
					}
				}
				out, err := s.agents[a].build(ctxs[a], round+1)
				if err != nil {
					return fmt.Errorf("%s, agent %d, build %d: %w\n%s", s.name, a+1, round+1, err, out)
				}
				t := harness.ContextTransfers(out)
				if len(t) != 1 {
					return fmt.Errorf("%s, agent %d, build %d: context uploads %+v in:\n%s", s.name, a+1, round+1, t, out)
				}
				if round == 0 {
					firsts = append(firsts, t[0])
				} else {
					later = append(later, t[0])
				}
			}
		}
		tr := medianTransfer(later)
		if k == 0 {
			plainBytes = tr.Bytes
		}
		fmt.Printf("| %d MB | %s | %s | %s | %s |\n", mb, s.name, size(medianTransfer(firsts).Bytes), size(tr.Bytes), ratio(tr.Bytes, plainBytes))
		os.RemoveAll(filepath.Join(dir, "alternating"))
	}
	return nil
}

// contextRounds is how many builds after the first each stack runs.
const contextRounds = 3

// medianTransfer is the transfer of median size.
func medianTransfer(ts []harness.Transfer) harness.Transfer {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b harness.Transfer) int { return int(a.Bytes - b.Bytes) })
	return ts[len(ts)/2]
}

func medianFloat(fs []float64) float64 {
	fs = slices.Clone(fs)
	slices.Sort(fs)
	return fs[len(fs)/2]
}

// randomContext writes mb MB of random files (1 MB each), a Dockerfile
// copying them and changed.txt into ctx.
func randomContext(ctx string, mb int) error {
	if err := os.MkdirAll(filepath.Join(ctx, "data"), 0o755); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range mb {
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(ctx, "data", fmt.Sprintf("blob-%04d", i)), buf, 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY . /ctx\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(ctx, "changed.txt"), []byte("initial\n"), 0o644)
}

// stepCommand is the job's command: change one file, build, time the build.
func stepCommand(ctx string, n int) string {
	return fmt.Sprintf(`cd %q && echo %d > changed.txt && start=$(date +%%s%%N) && docker buildx build --progress plain . && echo "step-ns=$(( $(date +%%s%%N) - start ))"`, ctx, n)
}

// stepSeconds is the build time the step printed.
func stepSeconds(out string) float64 {
	for _, l := range strings.Split(out, "\n") {
		var ns int64
		if _, err := fmt.Sscanf(strings.TrimSpace(l), "step-ns=%d", &ns); err == nil {
			return float64(ns) / 1e9
		}
	}
	return 0
}

// plainContextStack: a persistent docker config dir with the real buildx
// plugin and a remote builder created once with `docker buildx create`.
func plainContextStack(kit *harness.Kit, toolBin, dir, endpoint string, tls harness.TLSFiles) (contextStack, error) {
	dc := filepath.Join(dir, "plain-home", ".docker")
	if err := pluginConfig(dc, filepath.Join(toolBin, "docker-buildx")); err != nil {
		return contextStack{}, err
	}
	env := []string{"PATH=" + toolBin + ":/usr/bin:/bin", "HOME=" + filepath.Dir(dc), "DOCKER_CONFIG=" + dc, "BUILDX_BUILDER=plain"}
	create := exec.Command(filepath.Join(toolBin, "docker"), "buildx", "create", "--name", "plain", "--driver", "remote",
		"--driver-opt", fmt.Sprintf("cacert=%s,cert=%s,key=%s", tls.CA, tls.Cert, tls.Key), endpoint)
	create.Env = env
	if out, err := create.CombinedOutput(); err != nil {
		return contextStack{}, fmt.Errorf("docker buildx create: %w\n%s", err, out)
	}
	return contextStack{name: "plain ~/.docker", build: func(ctx string, n int) (string, error) {
		cmd := exec.Command("/bin/bash", "-e", "-c", stepCommand(ctx, n))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}}, nil
}

// dockhandContextStack: each build is a job through `dockhand bootstrap`
// with the remote builder configured; before runs first in the command.
func dockhandContextStack(dockhand, toolBin, dir, name, endpoint string, tls harness.TLSFiles, before string) contextStack {
	return dockhandAgentStack(dockhand, toolBin, filepath.Join(dir, name+"-home"), name, "bench-host-1", endpoint, tls, before)
}

// dockhandAgentStack is dockhandContextStack for agent on a host whose
// state and home are under home (the host's agents share them).
func dockhandAgentStack(dockhand, toolBin, home, name, agent, endpoint string, tls harness.TLSFiles, before string) contextStack {
	config := filepath.Join(home, "dockhand.toml")
	os.MkdirAll(home, 0o700)
	os.WriteFile(config, []byte(fmt.Sprintf("state_dir = %q\nbuilders = [\"remote\"]\n[remote]\nendpoints = [%q]\nca = %q\ncert = %q\nkey = %q\n",
		filepath.Join(home, "state"), endpoint, tls.CA, tls.Cert, tls.Key)), 0o600)
	userDC := filepath.Join(home, ".docker")
	pluginConfig(userDC, filepath.Join(toolBin, "docker-buildx"))
	base := []string{
		"PATH=" + toolBin + ":/usr/bin:/bin", "HOME=" + home, "TMPDIR=" + home, "DOCKER_CONFIG=" + userDC,
		"BUILDKITE_SKIP_CHECKOUT=true", "BUILDKITE_REPO=none", "BUILDKITE_COMMIT=HEAD", "BUILDKITE_BRANCH=main",
		"BUILDKITE_AGENT_NAME=" + agent, "BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=context-bench",
		"BUILDKITE_PIPELINE_PROVIDER=git", "BUILDKITE_BUILD_PATH=" + filepath.Join(home, "builds"),
		"BUILDKITE_HOOKS_PATH=" + filepath.Join(home, "hooks"), "BUILDKITE_PLUGINS_PATH=" + filepath.Join(home, "plugins"),
		"BUILDKITE_SOCKETS_PATH=" + filepath.Join(home, "sockets"), "BUILDKITE_PTY=false", "BUILDKITE_BIN_PATH=" + toolBin,
	}
	return contextStack{name: name, build: func(ctx string, n int) (string, error) {
		env := append(slices.Clone(base), fmt.Sprintf("BUILDKITE_JOB_ID=context-%s-%s-%d", agent, filepath.Base(filepath.Dir(ctx)), n),
			"BUILDKITE_COMMAND="+before+stepCommand(ctx, n))
		cmd := exec.Command(dockhand, "bootstrap", "--config", config)
		cmd.Env, cmd.Dir = env, home
		out, err := cmd.CombinedOutput()
		return string(out), err
	}}
}

// size prints bytes as BuildKit does (decimal units).
func size(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.2f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// ratio is a against b, "–" for b itself or when b is 0.
func ratio(a, b int64) string {
	if b == 0 {
		return "–"
	}
	if r := float64(a) / float64(b); r < 0.01 {
		return fmt.Sprintf("%.6f×", r)
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// contextSizesMB are the context sizes contextBench measures.
var contextSizesMB = []int{50, 500}

// runContextOnly is `go run ./test/bench -only context`.
func runContextOnly(int) error {
	dockhand, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	return contextBench(dockhand, toolBin, dir, contextSizesMB)
}
