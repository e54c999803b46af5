package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestComposeBuildCache: `docker compose build` hands bake its services as a
// definition on stdin (compose v2 by default, v5 always: it ignores
// COMPOSE_BAKE=false). Under dockhand with a registry cache, each service's
// build gets the cache flags a bake of the same target would, the cache is
// written to the registry, and the step prints what it prints on the plain
// stack — with the current compose and buildx and with the Elastic CI
// Stack's (compose 5.1.4, buildx 0.34.1, agent 3.137.0).
func TestComposeBuildCache(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "Dockerfile"), "FROM "+kit.BaseImage+"\nRUN echo hi > /hi\n")
	writeFile(t, filepath.Join(ctxDir, "compose.yaml"), "services:\n  app:\n    build: .\n    image: compose-cache:${T}\n    network_mode: none\n")
	// The step builds on a builder of its own (a plain remote buildkitd, which
	// keeps no cache across hosts), as a pipeline that sets BUILDX_BUILDER does;
	// cache.mode "always" has dockhand inject into a builder the step chose
	// (by default it leaves such a builder alone: docs/cache.md).
	command := fmt.Sprintf(`docker buildx create --name kit$T --driver remote %s >/dev/null
cd "$CTX"
BUILDX_BUILDER=kit$T docker compose -p c$T build
docker compose -p c$T run --rm app cat /hi | sed "s/^/$O/"`, kit.Buildkitd.Addr)
	for i, c := range []struct {
		versions harness.Versions
		env      map[string]string
	}{
		{versions: harness.Versions{}},
		// compose v5 builds through bake whatever COMPOSE_BAKE says.
		{versions: harness.Stack, env: map[string]string{"COMPOSE_BAKE": "false"}},
	} {
		t.Run(c.versions.String(), func(t *testing.T) {
			repo := fmt.Sprintf("%s/cache%d", kit.Registry.Host, i)
			r := cacheRig(t, fmt.Sprintf("[cache]\nmode = \"always\"\nbackend = \"registry\"\nrepository = %q\n", repo))
			r.useVersions(c.versions)
			var runs [2]corpusRun
			for j, plain := range []bool{true, false} {
				env := branchEnv("main")
				for k, v := range map[string]string{"DOCKER_HOST": engine.Host, "CTX": ctxDir, "O": "out: ", "T": fmt.Sprintf("v%d%d", i, j)} {
					env[k] = v
				}
				for k, v := range c.env {
					env[k] = v
				}
				runs[j] = r.runCorpus(corpusRow{command: command}, plain, env)
			}
			sameRuns(t, runs[0], runs[1], "0")
			if !slices.Equal(runs[1].out, []string{"out: hi"}) {
				t.Errorf("result lines %q, want the image's /hi", runs[1].out)
			}
			// compose reads bake's stderr as its progress (rawjson): the
			// shim's line is a step of that progress, which compose shows.
			if !regexp.MustCompile(`dockhand: cache [0-9a-f]{12} \(bake target app, `).MatchString(runs[1].log) {
				t.Errorf("the job log does not show the injection for bake target app:\n%s", runs[1].log)
			}
			written := tagsWithPrefix(registryState(t, kit.Registry.Host, fmt.Sprintf("cache%d/pipeline", i)), "")
			if len(written) != 1 || !strings.HasSuffix(written[0], "-main") {
				t.Errorf("cache refs %q in %s/pipeline, want one, for bake target app, tagged KEY-main\n%s", written, repo, runs[1].log)
			}
		})
	}
}
