package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestSmokeBuildxPush builds an image with the docker CLI's real buildx
// plugin on the kit's buildkitd and pushes it to the kit's registry.
func TestSmokeBuildxPush(t *testing.T) {
	kit := harness.Start(t, harness.Options{})
	work := t.TempDir()
	ctx := filepath.Join(work, "ctx")
	writeFile(t, filepath.Join(ctx, "Dockerfile"), fmt.Sprintf("FROM %s\nRUN echo built-by-buildkit > /hello.txt\n", kit.BaseImage))
	env, err := kit.DockerConfig(filepath.Join(work, "docker"), "kit", kit.Buildkitd)
	if err != nil {
		t.Fatal(err)
	}
	ref := kit.Registry.Host + "/smoke/app:1"
	cmd := kit.Command(ctx, env, "docker", "buildx", "build", "--push", "--progress", "plain", "-t", ref, ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker buildx build --push: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "echo built-by-buildkit") {
		t.Errorf("build output does not show the RUN step:\n%s", out)
	}
	if code := manifestStatus(t, kit.Registry.Host, "smoke/app", "1"); code != http.StatusOK {
		t.Fatalf("manifest of %s: HTTP %d, want 200", ref, code)
	}
	if code := manifestStatus(t, kit.Registry.Host, "smoke/app", "2"); code != http.StatusNotFound {
		t.Fatalf("manifest of a tag never pushed: HTTP %d, want 404", code)
	}
}

// TestKitStopsEverything checks the harness leaves no process or mount behind.
func TestKitStopsEverything(t *testing.T) {
	dir := t.TempDir()
	k, err := harness.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := k.StartRegistry(harness.RegistryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bk, err := k.StartBuildkitd("buildkitd", reg.Host)
	if err != nil {
		k.Close()
		t.Fatal(err)
	}
	if _, err := k.PushBaseImage(bk, reg); err != nil {
		k.Close()
		t.Fatal(err)
	}
	pids := k.Pids()
	if len(pids) != 2 {
		t.Fatalf("kit runs %d processes, want 2", len(pids))
	}
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still alive after Close", pid)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), dir) {
		t.Errorf("mounts left under %s:\n%s", dir, mounts)
	}
}

func manifestStatus(t *testing.T, host, repo, tag string) int {
	t.Helper()
	status, _ := headManifest(t, host, repo, tag)
	return status
}

// headManifest sends an anonymous manifest HEAD for repo:tag and returns the
// status and the Docker-Content-Digest header.
func headManifest(t *testing.T, host, repo, tag string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
	}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
