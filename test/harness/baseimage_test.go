package harness

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// TestBaseImageBuiltOnceCopiedIntoEachRegistry: the base image is built
// once into its cached layout; the copy in each registry (one with auth) is
// the same image and a build can RUN its shell; later asks for the layout
// need no builder.
func TestBaseImageBuiltOnceCopiedIntoEachRegistry(t *testing.T) {
	k, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	open, err := k.StartRegistry(RegistryOptions{Name: "open"})
	if err != nil {
		t.Fatal(err)
	}
	locked, err := k.StartRegistry(RegistryOptions{Name: "locked", User: "ci", Password: "base-image-pw"})
	if err != nil {
		t.Fatal(err)
	}
	bk, err := k.StartBuildkitd("buildkitd", open.Host, locked.Host)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	layout, err := k.baseImageIn(bk, cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Registry{open, locked} {
		if err := PushLayout(layout, r, "dockhand/busybox", "latest"); err != nil {
			t.Fatal(err)
		}
		// Again: blobs the registry has are skipped, the tag stays.
		if err := PushLayout(layout, r, "dockhand/busybox", "latest"); err != nil {
			t.Fatalf("second copy into %s: %v", r.Host, err)
		}
	}
	status, digest, err := HeadManifest(open.Host, "dockhand/busybox", "latest")
	if err != nil || status != 200 || digest == "" {
		t.Fatalf("HEAD %s/dockhand/busybox:latest = %d %q %v, want 200 and a digest", open.Host, status, digest, err)
	}
	req, _ := http.NewRequest(http.MethodHead, "http://"+locked.Host+"/v2/dockhand/busybox/manifests/latest", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	req.SetBasicAuth(locked.User, locked.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != 200 || got != digest {
		t.Errorf("HEAD with auth on %s = %s %q, want 200 and %s, the same image", locked.Host, resp.Status, got, digest)
	}

	// A build on the copy runs its shell.
	work := t.TempDir()
	dockerfile := "FROM " + open.Host + "/dockhand/busybox:latest\nRUN echo from-the-copy > /proof && cat /proof\n"
	if err := os.WriteFile(filepath.Join(work, "Dockerfile"), []byte(dockerfile), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := k.Command(work, nil, "buildctl", "--addr", bk.Addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context="+work, "--local", "dockerfile="+work).CombinedOutput()
	if err != nil {
		t.Fatalf("building FROM the copied base image: %v\n%s", err, out)
	}

	// Built once: with the builder gone, the layout is still there.
	bk.Stop()
	again, err := k.baseImageIn(bk, cache)
	if err != nil || again != layout {
		t.Fatalf("the layout asked for again with no builder = %q, %v; want %q from the cache", again, err, layout)
	}
}
