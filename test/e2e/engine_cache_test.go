package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// engineBuild is a job that builds with the engine's own builder, as a
// pipeline's plain `docker build` does on the built-in defaults.
func engineBuild(dockerfile string) string {
	return fmt.Sprintf("cat > Dockerfile <<'DOCKERFILE'\n%sDOCKERFILE\nstart=$(date +%%s%%N)\ndocker build --progress plain -t app .\n"+
		"echo \"build-ms=$(( ($(date +%%s%%N) - start) / 1000000 ))\"", dockerfile)
}

// TestLocalKindCacheOnEngines: on the local kind (the engine's own builder),
// per engine. On the classic store (20.10, current) dockhand only adds
// --cache-from: a job passes and writes nothing, and a fresh host's engine
// builds from scratch. On the containerd image store it also adds
// --cache-to: the first host's job writes the registry cache and a fresh
// host's engine finds every RUN step in it. With the s3 backend, which no
// engine's builder can export to (and which buildx fails the build for on
// the containerd store), it stays read-only and the job passes.
func TestLocalKindCacheOnEngines(t *testing.T) {
	kit := harness.Start(t, harness.Options{S3Bucket: "buildcache"})
	dockerfile := workDockerfile(kit.BaseImage)
	for _, v := range []harness.EngineVariant{harness.Engine2010, harness.EngineCurrent, harness.EngineCurrentContainerd} {
		t.Run(v.Name, func(t *testing.T) {
			var hosts [2]*harness.Dockerd
			for i := range hosts {
				d, err := kit.StartDockerd(harness.DockerdOptions{Name: fmt.Sprintf("host%d-%s", i, v.Name), Engine: v})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Stop()
				hosts[i] = d
			}
			repo := "engine-cache-" + strings.ReplaceAll(v.Name, ".", "-")
			r := cacheRig(t, fmt.Sprintf("[cache]\nrepository = %q\n", kit.Registry.Host+"/"+repo))
			env := func(d *harness.Dockerd) map[string]string {
				e := branchEnv("main")
				e["DOCKER_HOST"] = d.Host
				return e
			}
			first := runJob(t, r, engineBuild(dockerfile), env(hosts[0]))
			keys := injectedKeys(first)
			if len(keys) != 1 {
				t.Fatalf("injections %q, want one\n%s", keys, first)
			}
			written := tagsWithPrefix(registryState(t, kit.Registry.Host, repo+"/pipeline"), keys[0])
			second := runJob(t, r, engineBuild(dockerfile), env(hosts[1]))
			steps := runSteps(second)
			t.Logf("%s: first host's build %d ms, a fresh host's %d ms", v.Name, buildMillis(t, first), buildMillis(t, second))
			if v.ContainerdStore {
				if !strings.Contains(first, "; to "+kit.Registry.Host+"/"+repo+"/pipeline:"+keys[0]+"-main") {
					t.Errorf("the injection line does not say the cache is written:\n%s", first)
				}
				if len(written) != 1 {
					t.Errorf("cache tags %q after the first host's job, want %s-main", written, keys[0])
				}
				if steps.Total != 2 || steps.Cached != 2 || steps.Executed != 0 {
					t.Errorf("a fresh host's build: %+v, want every RUN step CACHED from the first host's export\n%s", steps, second)
				}
			} else {
				if !strings.Contains(first, "read-only (the docker driver cannot export cache (the engine's classic image store))") {
					t.Errorf("the injection line does not say the cache is read-only on the classic store:\n%s", first)
				}
				if len(written) != 0 {
					t.Errorf("cache tags %q after a job on the classic store, want none", written)
				}
				if steps.Executed != 2 {
					t.Errorf("a fresh host's build: %+v, want both RUN steps run (nothing was exported)\n%s", steps, second)
				}
			}

			writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n[cache]\nbackend = \"s3\"\n[cache.s3]\nbucket = \"buildcache\"\nregion = \"us-east-1\"\nendpoint_url = %q\n",
				r.state, kit.S3.Endpoint))
			s3 := runJob(t, r, engineBuild(workDockerfile(kit.BaseImage, "RUN echo ran-s3 > /s3")), env(hosts[0]))
			if !strings.Contains(s3, "read-only (the docker driver cannot export s3 cache)") {
				t.Errorf("the s3 injection line does not say it is read-only:\n%s", s3)
			}
		})
	}
}
