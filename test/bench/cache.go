package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// shimJobState is a job state whose cache injection is on (registry
// backend), as the bootstrap writes it.
func shimJobState(jobDir, repository, pipeline string) error {
	state := map[string]any{
		"shell": "/bin/bash",
		"cache": map[string]any{
			"mode":     "auto",
			"backend":  map[string]any{"kind": "registry", "repository": repository},
			"identity": map[string]any{"pipeline": pipeline, "branch": "main", "default_branch": "main", "pull_request": "false"},
		},
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(jobDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(jobDir, "job.json"), data, 0o600)
}

// pluginConfig makes a docker config dir whose docker-buildx is plugin.
func pluginConfig(dir, plugin string) error {
	if err := os.MkdirAll(filepath.Join(dir, "cli-plugins"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		return err
	}
	link := filepath.Join(dir, "cli-plugins", "docker-buildx")
	os.Remove(link)
	return os.Symlink(plugin, link)
}

// shimPair: `docker buildx version` through the job's shim (which reads the
// job state, parses the call and execs the real plugin; docker runs it twice,
// for the metadata and for the command) vs with the real plugin in its place.
func shimPair(dockhand, toolBin, dir string, runs int) (pair, error) {
	jobDir := filepath.Join(dir, "shim-job")
	if err := shimJobState(jobDir, "127.0.0.1:5000/cache", "bench"); err != nil {
		return pair{}, err
	}
	shimDC, plainDC := filepath.Join(jobDir, "docker"), filepath.Join(dir, "plain-docker")
	real := filepath.Join(toolBin, "docker-buildx")
	if err := pluginConfig(shimDC, dockhand); err != nil {
		return pair{}, err
	}
	if err := pluginConfig(plainDC, real); err != nil {
		return pair{}, err
	}
	base := []string{"PATH=" + toolBin + ":/usr/bin:/bin", "HOME=" + dir, "BUILDKITE_JOB_ID=bench"}
	shimEnv := append(slices.Clone(base), "DOCKER_CONFIG="+shimDC, "DOCKHAND_JOB_DIR="+jobDir, "DOCKHAND_REAL_BUILDX="+real)
	plainEnv := append(slices.Clone(base), "DOCKER_CONFIG="+plainDC)
	docker := filepath.Join(toolBin, "docker")
	return pair{
		name: "buildx shim overhead", bar: 5 * time.Millisecond, runs: runs,
		dockhand:   command(shimEnv, dir, docker, "buildx", "version"),
		dockhandIs: "docker buildx version (shim)",
		plain:      command(plainEnv, dir, docker, "buildx", "version"),
		plainIs:    "docker buildx version (real plugin)",
	}, nil
}

// rebuildDockerfile does measurable work in three RUN steps.
func rebuildDockerfile(base string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM %s\n", base)
	for i := range 3 {
		fmt.Fprintf(&b, "RUN echo ran-%d && sleep 1 && head -c 30000000 /dev/urandom | sha256sum > /%d\n", i, i)
	}
	return b.String()
}

// cacheBench: a build through the shim on a fresh buildkitd A, then the same
// build on another fresh buildkitd B, whose only cache is what the shim's
// injected --cache-to wrote to the registry. Each round uses a new pipeline
// (so a new cache) and two new daemons.
func cacheBench(dockhand, toolBin, dir string, rounds int) error {
	kit, err := harness.New(filepath.Join(dir, "kit"))
	if err != nil {
		return err
	}
	os.MkdirAll(kit.Dir, 0o700)
	defer kit.Close()
	seeded, err := kit.StartEnv(harness.Options{})
	if err != nil {
		return err
	}
	reg, base := seeded.Registry, seeded.BaseImage
	ctxDir := filepath.Join(dir, "rebuild-ctx")
	os.MkdirAll(ctxDir, 0o700)
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(rebuildDockerfile(base)), 0o600); err != nil {
		return err
	}
	real := filepath.Join(toolBin, "docker-buildx")
	var firsts, rebuilds []time.Duration
	var total, cached int
	for i := range rounds {
		jobDir := filepath.Join(dir, fmt.Sprintf("rebuild-job-%d", i))
		if err := shimJobState(jobDir, reg.Host+"/cache", fmt.Sprintf("bench-%d", i)); err != nil {
			return err
		}
		var took [2]time.Duration
		for j, name := range []string{"a", "b"} {
			b, err := kit.StartBuildkitd(fmt.Sprintf("bench-%d-%s", i, name), reg.Host)
			if err != nil {
				return err
			}
			dc := filepath.Join(jobDir, "docker-"+name)
			env, err := kit.DockerConfig(dc, "kit", b)
			if err != nil {
				return err
			}
			if err := pluginConfig(dc, dockhand); err != nil {
				return err
			}
			env = append(env, "PATH="+toolBin+":/usr/bin:/bin", "HOME="+dir, "BUILDKITE_JOB_ID=bench",
				"DOCKHAND_JOB_DIR="+jobDir, "DOCKHAND_REAL_BUILDX="+real)
			cmd := exec.Command(filepath.Join(toolBin, "docker"), "buildx", "build", "--progress", "plain", ".")
			cmd.Env, cmd.Dir = env, ctxDir
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took[j] = time.Since(start)
			if err != nil {
				return fmt.Errorf("build on %s: %w\n%s", name, err, out)
			}
			if !strings.Contains(string(out), "dockhand: cache ") {
				return fmt.Errorf("the shim injected no cache:\n%s", out)
			}
			if s := harness.RunSteps(string(out)); j == 1 {
				total, cached = total+s.Total, cached+s.Cached
			} else if s.Executed != s.Total {
				return fmt.Errorf("the first build hit a cache: %+v\n%s", s, out)
			}
		}
		firsts, rebuilds = append(firsts, took[0]), append(rebuilds, took[1])
	}
	first, rebuild := median(firsts), median(rebuilds)
	fmt.Printf("\n| rebuild from cache on a fresh builder (%d rounds, 3 RUN steps) | first build (median) | rebuild (median) | ratio | cached steps |\n|---|---|---|---|---|\n", rounds)
	fmt.Printf("| `docker buildx build` through the shim, registry cache, a new empty buildkitd each time | %s | %s | %.2f | %d of %d (%.0f%%) |\n",
		ms(first), ms(rebuild), float64(rebuild)/float64(first), cached, total, 100*float64(cached)/float64(max(total, 1)))
	return nil
}
