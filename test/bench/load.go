package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// loadSizesMB are the image sizes the load benchmark builds.
var loadSizesMB = []int{10, 100}

// loadBench measures what loading a BuildKit builder's result into the
// docker engine costs (what default-load does for `docker build` on remote,
// embedded and Namespace builders): the same fully cached build on a real
// buildkitd, without an output and with --load into a real engine, by image
// size.
func loadBench(toolBin, dir string, runs int) error {
	kit, err := harness.New(filepath.Join(dir, "load-kit"))
	if err != nil {
		return err
	}
	defer kit.Close()
	seeded, err := kit.StartEnv(harness.Options{})
	if err != nil {
		return err
	}
	bk, base := seeded.Buildkitd, seeded.BaseImage
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		return err
	}
	env, err := kit.DockerConfig(filepath.Join(dir, "load-docker"), "pool", bk)
	if err != nil {
		return err
	}
	env = append(env, "DOCKER_HOST="+engine.Host, "PATH="+toolBin+":/usr/bin:/bin")
	docker := filepath.Join(toolBin, "docker")
	fmt.Printf("\n| image size | `docker buildx build` (cached, no output) | with `--load` into the engine | load cost | runs |\n|---|---|---|---|---|\n")
	for _, mb := range loadSizesMB {
		ctx := filepath.Join(dir, fmt.Sprintf("load-%d", mb))
		if err := os.MkdirAll(ctx, 0o700); err != nil {
			return err
		}
		df := fmt.Sprintf("FROM %s\nRUN head -c %d /dev/urandom > /blob\n", base, mb<<20)
		if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o600); err != nil {
			return err
		}
		tag := fmt.Sprintf("load-bench:%d", mb)
		build := command(env, ctx, docker, "buildx", "build", "--builder", "pool", "-q", ".")
		load := command(env, ctx, docker, "buildx", "build", "--builder", "pool", "-q", "--load", "-t", tag, ".")
		rmi := command(env, ctx, docker, "rmi", "-f", tag)
		if err := build(); err != nil { // fill the cache: every measured build is cached
			return err
		}
		var plain, loaded []time.Duration
		for range runs {
			t, err := timed(build)
			if err != nil {
				return err
			}
			plain = append(plain, t)
			if t, err = timed(load); err != nil {
				return err
			}
			loaded = append(loaded, t)
			if err := rmi(); err != nil {
				return err
			}
		}
		p, l := median(plain), median(loaded)
		fmt.Printf("| %d MB | %s | %s | %s | %d each |\n", mb, ms(p), ms(l), ms(l-p), runs)
	}
	return nil
}

func runLoadOnly(runs int) error {
	_, toolBin, dir, done, err := setup()
	if err != nil {
		return err
	}
	defer done()
	return loadBench(toolBin, dir, max(runs/40, 5))
}
