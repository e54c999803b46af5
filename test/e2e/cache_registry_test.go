package e2e

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// branchEnv is a pipeline "pipeline" build of branch, default branch main.
func branchEnv(branch string) map[string]string {
	return map[string]string{
		"BUILDKITE_BRANCH":                  branch,
		"BUILDKITE_PIPELINE_DEFAULT_BRANCH": "main",
		"BUILDKITE_REPO":                    "git@github.com:acme/app.git",
		"BUILDKITE_PULL_REQUEST":            "false",
	}
}

func prEnv(branch, number, prRepo string) map[string]string {
	e := branchEnv(branch)
	e["BUILDKITE_PULL_REQUEST"] = number
	e["BUILDKITE_PULL_REQUEST_REPO"] = prRepo
	return e
}

// TestCacheRebuildOnFreshBuilder: a job builds on builder A; the same job on
// a fresh buildkitd B (empty root), through plain `docker build`, finds every
// RUN step CACHED in the registry and takes a fraction of the time.
func TestCacheRebuildOnFreshBuilder(t *testing.T) {
	// Not parallel: it times a rebuild against the first build: other tests' load skews the ratio.
	kit := harness.Start(t, harness.Options{})
	repo := kit.Registry.Host + "/cache"
	r := cacheRig(t, fmt.Sprintf("[cache]\nbackend = \"registry\"\nrepository = %q\n", repo))
	dockerfile := workDockerfile(kit.BaseImage)

	first := runJob(t, r, buildCommand(dockerfile, kit.Buildkitd.Addr,
		"docker buildx build --builder kit --progress plain ."), branchEnv("main"))
	if s := runSteps(first); s.Total != 2 || s.Executed != 2 || s.Cached != 0 {
		t.Fatalf("first build: %+v, want 2 RUN steps that ran\n%s", s, first)
	}
	keys := injectedKeys(first)
	if len(keys) != 1 {
		t.Fatalf("first build: injections %q, want one line\n%s", keys, first)
	}
	key := keys[0]
	if !strings.Contains(first, "dockhand: cache: auto, registry backend at "+repo) {
		t.Errorf("the job log section does not describe the cache:\n%s", first)
	}
	if !strings.Contains(first, "to "+repo+"/pipeline:"+key+"-main") {
		t.Errorf("the injection line does not name the ref written:\n%s", first)
	}
	if manifestDigest(t, kit.Registry.Host, "cache/pipeline", key+"-main") == "" {
		t.Fatalf("no cache ref %s/pipeline:%s-main after the first build", repo, key)
	}

	b := freshBuildkitd(t, kit, "buildkitd-b")
	second := runJob(t, r, buildCommand(dockerfile, b.Addr,
		"BUILDX_BUILDER=kit docker build --progress plain ."), branchEnv("main"))
	if s := runSteps(second); s.Total != 2 || s.Cached != 2 || s.Executed != 0 {
		t.Fatalf("rebuild on a fresh builder: %+v, want every RUN step CACHED\n%s", s, second)
	}
	if k := injectedKeys(second); len(k) != 1 || k[0] != key {
		t.Errorf("the rebuild's key %q differs from the first build's %s (the checkout path differs per agent)", k, key)
	}
	t1, t2 := buildMillis(t, first), buildMillis(t, second)
	t.Logf("first build %d ms, rebuild from cache on a fresh builder %d ms (ratio %.2f)", t1, t2, float64(t2)/float64(t1))
	if t2*2 > t1 {
		t.Errorf("rebuild took %d ms, more than half the first build's %d ms", t2, t1)
	}
}

// TestCacheBranchesPullRequestsForks: a new branch's first build reads the
// default branch's cache; a pull request writes only its own ref and leaves
// the default branch's byte for byte; a fork's build writes nothing.
func TestCacheBranchesPullRequestsForks(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	repo := kit.Registry.Host + "/cache"
	r := cacheRig(t, fmt.Sprintf("[cache]\nrepository = %q\n", repo))
	build := "docker buildx build --builder kit --progress plain ."

	main := runJob(t, r, buildCommand(workDockerfile(kit.BaseImage), kit.Buildkitd.Addr, build), branchEnv("main"))
	key := injectedKeys(main)[0]

	t.Run("new branch reads the default branch's cache", func(t *testing.T) {
		fresh := freshBuildkitd(t, kit, "buildkitd-branch")
		log := runJob(t, r, buildCommand(workDockerfile(kit.BaseImage), fresh.Addr, build), branchEnv("feature/login"))
		if s := runSteps(log); s.Total != 2 || s.Cached != 2 || s.Executed != 0 {
			t.Errorf("first build of a new branch: %+v, want every RUN step CACHED (from main)\n%s", s, log)
		}
		state := registryState(t, kit.Registry.Host, "cache/pipeline")
		if own := tagsWithPrefix(state, key+"-feature-login-"); len(own) != 1 {
			t.Errorf("the branch did not write its own ref: tags %q", tagsWithPrefix(state, key))
		}
	})

	t.Run("pull request leaves the default branch's ref unchanged", func(t *testing.T) {
		before := manifestDigest(t, kit.Registry.Host, "cache/pipeline", key+"-main")
		fresh := freshBuildkitd(t, kit, "buildkitd-pr")
		// A changed Dockerfile: were main's ref written, its digest would change.
		changed := workDockerfile(kit.BaseImage, "RUN echo ran-pull-request && echo pr > /pr")
		log := runJob(t, r, buildCommand(changed, fresh.Addr, build),
			prEnv("feature/login", "12", "https://github.com/acme/app"))
		// The two unchanged steps come from the cache (loaded, as the new
		// step builds on them): only the new one runs.
		if s := runSteps(log); s.Total != 3 || s.Executed != 1 {
			t.Errorf("pull request build: %+v, want only the new RUN step to run\n%s", s, log)
		}
		after := manifestDigest(t, kit.Registry.Host, "cache/pipeline", key+"-main")
		if before == "" || after != before {
			t.Errorf("the default branch's cache ref changed: %s -> %s", before, after)
		}
		if manifestDigest(t, kit.Registry.Host, "cache/pipeline", key+"-pr-12") == "" {
			t.Errorf("the pull request did not write its own ref %s-pr-12", key)
		}
		if !strings.Contains(log, "writes only pull request 12's refs") {
			t.Errorf("the job log section does not say the pull request's writes are confined:\n%s", log)
		}
	})

	t.Run("fork writes nothing", func(t *testing.T) {
		before := registryState(t, kit.Registry.Host, "cache/pipeline")
		fresh := freshBuildkitd(t, kit, "buildkitd-fork")
		changed := workDockerfile(kit.BaseImage, "RUN echo ran-fork && echo fork > /fork")
		log := runJob(t, r, buildCommand(changed, fresh.Addr, build),
			prEnv("mallory:feature", "13", "https://github.com/mallory/app.git"))
		if s := runSteps(log); s.Total != 3 || s.Executed != 1 {
			t.Errorf("fork build: %+v, want only the new RUN step to run (it reads main's cache)\n%s", s, log)
		}
		if !strings.Contains(log, "read-only (a pull request from a fork)") {
			t.Errorf("the injection line does not say the fork is read-only:\n%s", log)
		}
		if after := registryState(t, kit.Registry.Host, "cache/pipeline"); !maps.Equal(before, after) {
			t.Errorf("the fork's build changed the cache refs:\n before %v\n after  %v", before, after)
		}
	})
}
