package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// rebuildOnFreshBuilder runs the work build on builder a, then on the fresh
// builder b, and checks that the second finds every RUN step in the cache.
// It returns the cache key the shim reported.
func rebuildOnFreshBuilder(t *testing.T, r *rig, kit *harness.Env, a, b string, env map[string]string) (string, string) {
	t.Helper()
	dockerfile := workDockerfile(kit.BaseImage)
	build := "docker buildx build --builder kit --progress plain ."
	first := runJob(t, r, buildCommand(dockerfile, a, build), env)
	if s := runSteps(first); s.Executed != 2 {
		t.Fatalf("first build: %+v, want both RUN steps run\n%s", s, first)
	}
	keys := injectedKeys(first)
	if len(keys) != 1 {
		t.Fatalf("first build: injections %q, want one\n%s", keys, first)
	}
	second := runJob(t, r, buildCommand(dockerfile, b, build), env)
	if s := runSteps(second); s.Total != 2 || s.Cached != 2 || s.Executed != 0 {
		t.Fatalf("rebuild on a fresh builder: %+v, want every RUN step CACHED\n%s", s, second)
	}
	t.Logf("first build %d ms, rebuild on a fresh builder %d ms", buildMillis(t, first), buildMillis(t, second))
	return keys[0], first + second
}

// TestCacheS3Backend: the S3 backend against the kit's S3 server. The
// builders get the credentials in their environment; no process's command
// line ever holds the secret, nor does the job log.
func TestCacheS3Backend(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{S3Bucket: "buildcache"})
	const secret = "s3-secret-never-in-argv"
	harness.NoSecretInCmdlines(t, secret)
	creds := []string{"AWS_ACCESS_KEY_ID=dockhandtest", "AWS_SECRET_ACCESS_KEY=" + secret}
	var addrs []string
	for _, name := range []string{"buildkitd-s3-a", "buildkitd-s3-b"} {
		b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: name, InsecureRegistries: []string{kit.Registry.Host}, Env: creds})
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, b.Addr)
	}
	r := cacheRig(t, fmt.Sprintf(`[cache]
backend = "s3"
[cache.s3]
bucket = "buildcache"
region = "us-east-1"
prefix = "buildkit/"
endpoint_url = %q
`, kit.S3.Endpoint))
	env := branchEnv("main")
	// The job has AWS credentials too, as on an EC2 agent: buildx hands them
	// to the builder over its session, and nothing puts them on a command
	// line. No metadata service here.
	env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = "dockhandtest", secret
	env["AWS_EC2_METADATA_DISABLED"] = "true"
	key, logs := rebuildOnFreshBuilder(t, r, kit, addrs[0], addrs[1], env)

	if !strings.Contains(logs, "dockhand: cache: auto, s3 backend at s3://buildcache/buildkit/") {
		t.Errorf("the job log section does not describe the S3 cache")
	}
	if !strings.Contains(logs, "to s3://buildcache/buildkit/pipeline/manifests/"+key+"-main") {
		t.Errorf("the injection line does not name the S3 manifest written")
	}
	if strings.Contains(logs, secret) {
		t.Errorf("the S3 secret appears in the job log")
	}
	resp, err := http.Get(kit.S3.Endpoint + "/buildcache?list-type=2&prefix=buildkit/pipeline/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "buildkit/pipeline/manifests/"+key+"-main") || !strings.Contains(string(body), "buildkit/pipeline/blobs/") {
		t.Errorf("the bucket has no manifest and blobs for %s-main under buildkit/pipeline/:\n%s", key, body)
	}
}

// TestCacheLocalBackend: the local backend, a directory on the host with one
// OCI layout per pipeline, kept under cache.local.max_size by evicting the
// least recently written pipelines.
func TestCacheLocalBackend(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	dir := filepath.Join(t.TempDir(), "cache")
	// Another pipeline's stale cache, bigger than the bound on its own.
	stale := filepath.Join(dir, "old-pipeline")
	writeFile(t, filepath.Join(stale, "index.json"), `{"schemaVersion":2,"manifests":[]}`)
	writeFile(t, filepath.Join(stale, "blobs", "sha256", "big"), strings.Repeat("x", 3_000_000))
	old := mustTime(t, "2020-01-02T03:04:05Z")
	for _, p := range []string{filepath.Join(stale, "index.json"), stale} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	r := cacheRig(t, fmt.Sprintf("[cache]\nbackend = \"local\"\n[cache.local]\ndir = %q\nmax_size = \"2MB\"\n", dir))
	r.own(filepath.Dir(dir)) // the agent user's cache dir, as an operator makes it
	b := freshBuildkitd(t, kit, "buildkitd-local-b")
	key, logs := rebuildOnFreshBuilder(t, r, kit, kit.Buildkitd.Addr, b.Addr, branchEnv("main"))

	if !strings.Contains(logs, "to "+filepath.Join(dir, "pipeline")+":"+key+"-main") {
		t.Errorf("the injection line does not name the local layout and tag")
	}
	data, err := os.ReadFile(filepath.Join(dir, "pipeline", "index.json"))
	if err != nil {
		t.Fatalf("no OCI layout for the pipeline: %v", err)
	}
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &index); err != nil {
		t.Fatal(err)
	}
	tagged := false
	for _, m := range index.Manifests {
		tagged = tagged || m.Annotations["org.opencontainers.image.ref.name"] == key+"-main"
	}
	if !tagged {
		t.Errorf("index.json has no %s-main tag: %s", key, data)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale pipeline's cache %s was not evicted to stay under max_size: %v", stale, err)
	}
	if !strings.Contains(logs, "evicted old-pipeline") {
		t.Errorf("the job log does not say what was evicted")
	}
}

// TestCacheBake: `docker buildx bake` with two targets, each with its own
// key, both from the cache on a fresh builder.
func TestCacheBake(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	repo := kit.Registry.Host + "/cache"
	r := cacheRig(t, fmt.Sprintf("[cache]\nrepository = %q\n", repo))
	files := fmt.Sprintf(`cat > Dockerfile <<'DOCKERFILE'
FROM %s AS app
RUN echo ran-app && sleep 1.5
FROM %[1]s AS test
RUN echo ran-test && sleep 1.5
DOCKERFILE
cat > docker-bake.hcl <<'HCL'
group "default" {
  targets = ["app", "test"]
}
target "app" {
  target = "app"
}
target "test" {
  target = "test"
}
HCL
`, kit.BaseImage)
	bake := func(addr string) string {
		return files + fmt.Sprintf(`docker buildx create --name kit --driver remote %s >/dev/null
docker buildx bake --builder kit --progress plain`, addr)
	}
	first := runJob(t, r, bake(kit.Buildkitd.Addr), branchEnv("main"))
	keys := injectedKeys(first)
	if len(keys) != 2 || keys[0] == keys[1] {
		t.Fatalf("bake injections %q, want two targets with a key each\n%s", keys, first)
	}
	if s := runSteps(first); s.Total != 2 || s.Executed != 2 {
		t.Fatalf("first bake: %+v, want both targets' RUN steps run\n%s", s, first)
	}
	state := registryState(t, kit.Registry.Host, "cache/pipeline")
	for _, k := range keys {
		if state[k+"-main"] == "" {
			t.Errorf("no cache ref for key %s: %v", k, state)
		}
	}
	b := freshBuildkitd(t, kit, "buildkitd-bake-b")
	second := runJob(t, r, bake(b.Addr), branchEnv("main"))
	if s := runSteps(second); s.Total != 2 || s.Cached != 2 || s.Executed != 0 {
		t.Errorf("bake on a fresh builder: %+v, want every RUN step CACHED\n%s", s, second)
	}
	if k := injectedKeys(second); len(k) != 2 || k[0] != keys[0] || k[1] != keys[1] {
		t.Errorf("second bake keys %q, want %q", k, keys)
	}
}
