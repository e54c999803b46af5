// Command bench is `make bench`: it measures dockhand's overheads against the
// plain equivalent in the same run, alternating the two so both see the same
// machine, and prints medians and ratios as a Markdown table for
// docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// pair is one benchmark: dockhand's way and the plain way of doing the same.
type pair struct {
	name       string
	bar        time.Duration // the most dockhand may add to the median
	runs       int
	dockhand   func() error
	plain      func() error
	dockhandIs string
	plainIs    string
}

func main() {
	runs := flag.Int("runs", 200, "runs of each command for the fast benchmarks")
	only := flag.String("only", "", `run one benchmark only: "selection", "context", "namespace", "remap", "load", "engine", "firstget", "phases", "pool" or "baseline"`)
	baseline := flag.String("baseline", "", `with -only baseline: another build's dockhand binary (dockhand-cloud beside it) to compare this build's job path with`)
	flag.Parse()
	do := run
	switch *only {
	case "":
	case "selection":
		do = runSelectionOnly
	case "context":
		do = runContextOnly
	case "namespace":
		do = runNamespaceOnly
	case "remap":
		do = func(int) error { remapBench(); return nil }
	case "load":
		do = runLoadOnly
	case "engine":
		do = runEngineOnly
	case "firstget":
		do = runFirstGetOnly
	case "phases":
		do = runPhasesOnly
	case "pool":
		do = runPoolOnly
	case "baseline":
		do = func(runs int) error { return runBaselineOnly(runs, *baseline) }
	default:
		fmt.Fprintf(os.Stderr, "bench: -only %q: want selection, context, namespace, remap, load, engine, firstget, phases, pool or baseline\n", *only)
		os.Exit(2)
	}
	if err := do(*runs); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// setup finds dockhand and the real components and makes the run's temp
// dir; done removes what it made.
func setup() (dockhand, toolBin, dir string, done func(), err error) {
	if dockhand, err = harness.Dockhand(); err != nil {
		return "", "", "", nil, err
	}
	if toolBin, err = harness.FindToolBin(os.Environ()); err == nil {
		dir, err = os.MkdirTemp("", "dockhand-bench-")
	}
	if err != nil {
		harness.CleanupDockhand()
		return "", "", "", nil, err
	}
	return dockhand, toolBin, dir, func() { os.RemoveAll(dir); harness.CleanupDockhand() }, nil
}

func run(runs int) error {
	dockhand, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()

	shim, err := shimPair(dockhand, toolBin, dir, max(runs/2, 20))
	if err != nil {
		return fmt.Errorf("buildx shim: %w", err)
	}
	newest := harness.EngineVariants()[len(harness.EngineVariants())-1]
	engine, stop, err := startEngine(dir, newest)
	if err != nil {
		return err
	}
	defer stop()
	failed, err := pairsTable([]pair{
		shellPair(dockhand, dir, runs),
		bootstrapPair(dockhand, toolBin, dir, max(runs/4, 20)),
		enginePair(dockhand, toolBin, dir, engine, 20),
		shim,
	})
	if err != nil {
		return err
	}
	if err := cacheBench(dockhand, toolBin, dir, 3); err != nil {
		return fmt.Errorf("rebuild from cache: %w", err)
	}
	if err := loadBench(toolBin, dir, 5); err != nil {
		return fmt.Errorf("load into the engine: %w", err)
	}
	if err := contextBench(dockhand, toolBin, dir, contextSizesMB); err != nil {
		return fmt.Errorf("context upload: %w", err)
	}
	credFailed, err := credentialBench(dockhand, toolBin, dir, runs)
	if err != nil {
		return fmt.Errorf("credential helpers: %w", err)
	}
	if err := firstGetBench(dockhand, toolBin, dir); err != nil {
		return fmt.Errorf("first get: %w", err)
	}
	if err := phasesBench(dockhand, toolBin, dir, max(runs/10, 20)); err != nil {
		return fmt.Errorf("setup phases: %w", err)
	}
	tagFailed, err := cachedImageBench(dockhand, dir, max(runs/20, 5))
	if err != nil {
		return fmt.Errorf("cached-image tag: %w", err)
	}
	selFailed, err := selectionBench(dockhand, dir, max(runs/2, 20))
	if err != nil {
		return fmt.Errorf("builder selection: %w", err)
	}
	if err := namespaceBench(dockhand, dir, max(runs/10, 10)); err != nil {
		return fmt.Errorf("namespace choice: %w", err)
	}
	remapBench()
	if err := poolBench(dockhand, dir); err != nil {
		return fmt.Errorf("pool simulation: %w", err)
	}
	if failed || credFailed || tagFailed || selFailed {
		return fmt.Errorf("a bar was missed")
	}
	return nil
}

// measure alternates the two commands and returns both medians.
func measure(p pair) (time.Duration, time.Duration, error) {
	var d, pl []time.Duration
	for range 3 { // warm caches
		if err := p.dockhand(); err != nil {
			return 0, 0, err
		}
		if err := p.plain(); err != nil {
			return 0, 0, err
		}
	}
	for range p.runs {
		t, err := timed(p.dockhand)
		if err != nil {
			return 0, 0, err
		}
		d = append(d, t)
		if t, err = timed(p.plain); err != nil {
			return 0, 0, err
		}
		pl = append(pl, t)
	}
	return median(d), median(pl), nil
}

func timed(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

func median(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func command(env []string, dir string, argv ...string) func() error {
	return func() error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Dir = env, dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
		}
		return nil
	}
}

// shellPair: `dockhand shell -e -c true` vs `/bin/bash -e -c true`, in a
// job whose docker config is in place (the path a job's command takes).
func shellPair(dockhand, dir string, runs int) pair {
	jobDir := filepath.Join(dir, "shell-job")
	os.MkdirAll(filepath.Join(jobDir, "docker"), 0o700)
	os.WriteFile(filepath.Join(jobDir, "docker", "config.json"), []byte(`{"credsStore":"dockhand"}`), 0o600)
	os.WriteFile(filepath.Join(jobDir, "job.json"), []byte(`{"shell":"/bin/bash"}`), 0o600)
	env := []string{"PATH=/usr/bin:/bin", "BUILDKITE_JOB_ID=bench", "DOCKHAND_JOB_DIR=" + jobDir,
		"DOCKER_CONFIG=" + filepath.Join(jobDir, "docker")}
	return pair{
		name: "shell overhead", bar: 2 * time.Millisecond, runs: runs,
		dockhand: command(env, dir, dockhand, "shell", "-e", "-c", "true"), dockhandIs: "dockhand shell -e -c true",
		plain: command(env, dir, "/bin/bash", "-e", "-c", "true"), plainIs: "/bin/bash -e -c true",
	}
}

// bootstrapPair: a trivial job (`true`, no checkout) through `dockhand
// bootstrap` vs the plain `buildkite-agent bootstrap`, same environment.
func bootstrapPair(dockhand, toolBin, dir string, runs int) pair {
	config := filepath.Join(dir, "dockhand.toml")
	os.WriteFile(config, []byte(fmt.Sprintf("state_dir = %q\n", filepath.Join(dir, "state"))), 0o600)
	env := bootstrapEnv(toolBin, dir)
	return pair{
		name: "bootstrap overhead", bar: 30 * time.Millisecond, runs: runs,
		dockhand: command(env, dir, dockhand, "bootstrap", "--config", config), dockhandIs: "dockhand bootstrap",
		plain: command(env, dir, filepath.Join(toolBin, "buildkite-agent"), "bootstrap"), plainIs: "buildkite-agent bootstrap",
	}
}

// enginePair: the same trivial job on a host whose only builder is its
// docker engine (built-in defaults: namespace and remote not configured,
// local probed), so dockhand's whole setup — job dir, docker config, the
// engine's probe, the builder choice — is what it adds.
func enginePair(dockhand, toolBin, dir string, engine *harness.Dockerd, runs int) pair {
	config := filepath.Join(dir, "engine.toml")
	os.WriteFile(config, []byte(fmt.Sprintf("state_dir = %q\n", filepath.Join(dir, "engine-state"))), 0o600)
	env := append(bootstrapEnv(toolBin, dir), "DOCKER_HOST="+engine.Host)
	return pair{
		name: "setup on a docker engine host, engine " + engine.Variant.Name, bar: 50 * time.Millisecond, runs: runs,
		dockhand: command(env, dir, dockhand, "bootstrap", "--config", config), dockhandIs: "dockhand bootstrap, builder local",
		plain: command(env, dir, filepath.Join(toolBin, "buildkite-agent"), "bootstrap"), plainIs: "buildkite-agent bootstrap",
	}
}

// bootstrapEnv is a trivial job's environment (`true`, no checkout).
func bootstrapEnv(toolBin, dir string) []string {
	return []string{
		"PATH=" + toolBin + ":/usr/bin:/bin", "HOME=" + dir, "TMPDIR=" + dir,
		"BUILDKITE_JOB_ID=bench-job", "BUILDKITE_COMMAND=true", "BUILDKITE_SKIP_CHECKOUT=true",
		"BUILDKITE_REPO=none", "BUILDKITE_COMMIT=HEAD", "BUILDKITE_BRANCH=main", "BUILDKITE_AGENT_NAME=bench",
		"BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=pipe", "BUILDKITE_PIPELINE_PROVIDER=git",
		"BUILDKITE_BUILD_PATH=" + filepath.Join(dir, "builds"), "BUILDKITE_HOOKS_PATH=" + filepath.Join(dir, "hooks"),
		"BUILDKITE_PLUGINS_PATH=" + filepath.Join(dir, "plugins"), "BUILDKITE_SOCKETS_PATH=" + filepath.Join(dir, "sockets"),
		"BUILDKITE_PTY=false", "BUILDKITE_BIN_PATH=" + toolBin,
	}
}

// runEngineOnly is the setup benchmark on a docker engine host, on Debian's
// 20.10 and on the current engine as new installs set it up, then each
// section of engineSections.
func runEngineOnly(int) error {
	dockhand, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	var pairs []pair
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	variants := harness.EngineVariants()
	for _, v := range []harness.EngineVariant{variants[0], variants[len(variants)-1]} {
		engine, stop, err := startEngine(dir, v)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
		pairs = append(pairs, enginePair(dockhand, toolBin, dir, engine, 20))
	}
	failed, err := pairsTable(pairs)
	// The engines are not part of what follows.
	for _, stop := range stops {
		stop()
	}
	stops = nil
	for _, section := range engineSections {
		if err != nil {
			break
		}
		var missed bool
		missed, err = section(dockhand, toolBin, dir)
		failed = failed || missed
	}
	if err == nil && failed {
		err = fmt.Errorf("a bar was missed")
	}
	return err
}

// engineSections are the rest of `-only engine`, each printing its own
// table and saying whether it missed a bar: add one here.
var engineSections = []func(dockhand, toolBin, dir string) (bool, error){
	func(dockhand, toolBin, dir string) (bool, error) { return embeddedBench(dockhand, toolBin, dir, 5, 20) },
}

// startEngine starts a docker engine, variant v, in a kit under dir; stop
// ends both.
func startEngine(dir string, v harness.EngineVariant) (engine *harness.Dockerd, stop func(), err error) {
	kit, err := harness.New(filepath.Join(dir, "kit-"+v.Name))
	if err != nil {
		return nil, nil, err
	}
	if engine, err = kit.StartDockerd(harness.DockerdOptions{Engine: v}); err != nil {
		kit.Close()
		return nil, nil, fmt.Errorf("docker engine %s: %w", v.Name, err)
	}
	return engine, func() { kit.Close() }, nil
}

// pairsTable measures each pair and prints the table of them, each row
// with its bar and whether it was met.
func pairsTable(pairs []pair) (failed bool, err error) {
	fmt.Printf("| benchmark | dockhand (median) | plain (median) | added | ratio | bar |\n|---|---|---|---|---|---|\n")
	for _, p := range pairs {
		d, pl, err := measure(p)
		if err != nil {
			return false, fmt.Errorf("%s: %w", p.name, err)
		}
		added := d - pl
		verdict := "met"
		if added > p.bar {
			verdict, failed = "MISSED", true
		}
		fmt.Printf("| %s (`%s` vs `%s`, %d runs each) | %s | %s | %s | %.2f | ≤ %s added: %s |\n",
			p.name, p.dockhandIs, p.plainIs, p.runs, ms(d), ms(pl), ms(added), float64(d)/float64(pl), ms(p.bar), verdict)
	}
	return failed, nil
}

// newKit makes dir/name and a kit of components in it.
func newKit(dir, name string) (*harness.Kit, string, error) {
	kitDir := filepath.Join(dir, name)
	if err := os.MkdirAll(kitDir, 0o700); err != nil {
		return nil, "", err
	}
	kit, err := harness.New(kitDir)
	return kit, kitDir, err
}
