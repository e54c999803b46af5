package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	t.Parallel()
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
				if steps.Total != 2 || steps.Executed != 0 {
					t.Errorf("a fresh host's build: %+v, want every RUN step from the first host's export (CACHED, or loaded)\n%s", steps, second)
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

// TestEngineReadsImageManifestCache: what the engine's own builder does with
// a registry cache in the format dockhand writes to ECR (image-manifest=true,
// oci-mediatypes=true, which BuildKit 0.12 introduced and 0.34 writes by
// default everywhere; the kit's registry, like ECR, refuses the older
// index-style cache), written by the kit's buildkitd. A plain
// `--cache-from` of it passes on every engine. The current engine's
// BuildKit finds the RUN step in it. 20.10's BuildKit 0.8 takes the image
// manifest for an image with inline cache and drops it ("invalid image with
// mismatching manifest and config" in the engine's log, which a build with
// no --cache-from does not print): a miss, never a failed build, so
// dockhand's --cache-from on the local kind is harmless there.
func TestEngineReadsImageManifestCache(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	seedEnv, err := kit.DockerConfig(t.TempDir(), "kit", kit.Buildkitd)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.TempDir()
	writeFile(t, filepath.Join(ctx, "Dockerfile"), fmt.Sprintf("FROM %s\nRUN echo ran-one-%d && echo one > /one\n", kit.BaseImage, time.Now().UnixNano()))
	ref := kit.Registry.Host + "/format/manifest:k"
	out, err := kit.Command(ctx, seedEnv, "docker", "buildx", "build", "--progress", "plain",
		"--cache-to", "type=registry,ref="+ref+",mode=max,image-manifest=true,oci-mediatypes=true", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("seeding the cache: %v\n%s", err, out)
	}
	const dropped = "invalid image with mismatching manifest and config"
	for _, v := range []harness.EngineVariant{harness.Engine2010, harness.EngineCurrent, harness.EngineCurrentContainerd} {
		t.Run(v.Name, func(t *testing.T) {
			d, err := kit.StartDockerd(harness.DockerdOptions{Name: "format-" + v.Name, Engine: v})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Stop()
			// The real buildx plugin; its builder is the engine's own.
			env, err := kit.DockerConfig(t.TempDir(), "kit", kit.Buildkitd)
			if err != nil {
				t.Fatal(err)
			}
			env = append(env, "DOCKER_HOST="+d.Host, "BUILDX_BUILDER=default")
			for _, from := range []bool{false, true} {
				// Nothing of an earlier build left in the engine.
				if out, err := kit.Command("", env, "docker", "builder", "prune", "-af").CombinedOutput(); err != nil {
					t.Fatalf("docker builder prune: %v\n%s", err, out)
				}
				before, _ := os.ReadFile(d.LogPath())
				args := []string{"buildx", "build", "--progress", "plain", "."}
				if from {
					args = append(args, "--cache-from", "type=registry,ref="+ref)
				}
				out, err := kit.Command(ctx, env, "docker", args...).CombinedOutput()
				if err != nil {
					t.Fatalf("build (--cache-from: %v) failed: %v\n%s", from, err, out)
				}
				after, _ := os.ReadFile(d.LogPath())
				droppedNow := strings.Contains(string(after[len(before):]), dropped)
				steps := runSteps(string(out))
				t.Logf("%s, --cache-from %v: %+v, cache dropped as an image: %v", v.Name, from, steps, droppedNow)
				if want := from && !v.Current; droppedNow != want {
					t.Errorf("--cache-from %v: the engine's log says the cache was dropped as an image: %v, want %v", from, droppedNow, want)
				}
				// A hit is CACHED, or loaded from the cache (its layer
				// downloaded) when it is the last step: either way it did not run.
				if wantHit := from && v.Current; (steps.Executed == 0) != wantHit || steps.Total != 1 {
					t.Errorf("--cache-from %v: %+v, want the RUN step from the cache: %v\n%s", from, steps, wantHit, out)
				}
			}
		})
	}
}
