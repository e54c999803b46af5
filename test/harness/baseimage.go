package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dockhand-ci/dockhand/internal/filelock"
)

// baseImage guards the base image's layout within this test process; a file
// lock beside the layout guards it across processes (test binaries of
// several packages run at once).
var baseImage struct {
	sync.Mutex
	layout string // set once built or found
}

// BaseImageLayout returns the directory of an OCI image layout holding the
// busybox base image (BaseImageDockerfile), building it with buildctl on b
// the first time: under the user's cache dir, named for the hash of busybox
// and the Dockerfile, so a run reuses what an earlier one built from the
// same inputs, and nothing stale is ever used.
func (k *Kit) BaseImageLayout(b *Buildkitd) (string, error) {
	baseImage.Lock()
	defer baseImage.Unlock()
	if baseImage.layout != "" {
		return baseImage.layout, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	layout, err := k.baseImageIn(b, filepath.Join(cache, "dockhand-test"))
	if err != nil {
		return "", err
	}
	baseImage.layout = layout
	return layout, nil
}

// baseImageIn is BaseImageLayout's layout under the cache dir, built there
// with b unless another process or run did.
func (k *Kit) baseImageIn(b *Buildkitd, cache string) (string, error) {
	busybox, err := os.ReadFile(k.Bin("busybox"))
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return "", err
	}
	sum := sha256.New()
	sum.Write(busybox)
	sum.Write([]byte(BaseImageDockerfile))
	layout := filepath.Join(cache, "base-image-"+hex.EncodeToString(sum.Sum(nil))[:16])
	release, err := filelock.Lock(context.Background(), layout+".lock", 5*time.Minute)
	if err != nil {
		return "", err
	}
	defer release()
	if _, err := os.Stat(filepath.Join(layout, "index.json")); err == nil {
		return layout, nil
	}
	if err := k.buildBaseImage(b, busybox, layout); err != nil {
		return "", err
	}
	return layout, nil
}

// buildBaseImage builds the base image into the OCI layout dir, whole or
// not at all (it is built beside and renamed).
func (k *Kit) buildBaseImage(b *Buildkitd, busybox []byte, dir string) error {
	ctxDir := filepath.Join(k.Dir, "base-image")
	if err := os.MkdirAll(ctxDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "busybox"), busybox, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(BaseImageDockerfile), 0o600); err != nil {
		return err
	}
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	cmd := k.Command(ctxDir, nil, "buildctl", "--addr", b.Addr, "build",
		"--frontend", "dockerfile.v0",
		"--local", "context="+ctxDir, "--local", "dockerfile="+ctxDir,
		"--output", "type=oci,tar=false,dest="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the base image: %w\n%s", err, out)
	}
	return os.Rename(tmp, dir)
}

// descriptor is the part of an OCI descriptor, manifest or index that
// copying a layout needs.
type descriptor struct {
	MediaType string       `json:"mediaType"`
	Digest    string       `json:"digest"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
	Manifests []descriptor `json:"manifests"`
}

// PushLayout copies the image an OCI layout's index.json names (its only
// manifest, or index with its manifests) into registry r as repo:tag, over
// the distribution API: each blob once (one the registry has is skipped),
// then the manifests.
func PushLayout(layout string, r *Registry, repo, tag string) error {
	var index descriptor
	if err := readJSON(filepath.Join(layout, "index.json"), &index); err != nil {
		return err
	}
	if len(index.Manifests) != 1 {
		return fmt.Errorf("%s: index.json names %d images, want 1", layout, len(index.Manifests))
	}
	p := layoutPush{layout: layout, reg: r, repo: repo}
	return p.manifest(index.Manifests[0], tag)
}

type layoutPush struct {
	layout string
	reg    *Registry
	repo   string
}

func (p layoutPush) blobPath(digest string) string {
	return filepath.Join(p.layout, "blobs", strings.Replace(digest, ":", string(filepath.Separator), 1))
}

// manifest pushes what d refers to, then d itself as reference.
func (p layoutPush) manifest(d descriptor, reference string) error {
	body, err := os.ReadFile(p.blobPath(d.Digest))
	if err != nil {
		return err
	}
	var m descriptor
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("%s: %w", d.Digest, err)
	}
	for _, child := range m.Manifests {
		if err := p.manifest(child, child.Digest); err != nil {
			return err
		}
	}
	blobs := m.Layers
	if m.Config != nil {
		blobs = append(blobs, *m.Config)
	}
	for _, b := range blobs {
		if err := p.blob(b.Digest); err != nil {
			return err
		}
	}
	resp, err := p.do(http.MethodPut, "/v2/"+p.repo+"/manifests/"+reference, d.MediaType, body)
	if err != nil {
		return err
	}
	return wantStatus(resp, http.StatusCreated)
}

// blob uploads one blob unless the registry has it: a POST opens the
// upload, a PUT with the digest sends it whole.
func (p layoutPush) blob(digest string) error {
	resp, err := p.do(http.MethodHead, "/v2/"+p.repo+"/blobs/"+digest, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, err := os.ReadFile(p.blobPath(digest))
	if err != nil {
		return err
	}
	if resp, err = p.do(http.MethodPost, "/v2/"+p.repo+"/blobs/uploads/", "", nil); err != nil {
		return err
	}
	if err := wantStatus(resp, http.StatusAccepted); err != nil {
		return err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	if resp, err = p.do(http.MethodPut, loc.RequestURI(), "application/octet-stream", body); err != nil {
		return err
	}
	return wantStatus(resp, http.StatusCreated)
}

// do sends one request to the registry, with its basic auth when it has one.
func (p layoutPush) do(method, path, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://"+p.reg.Host+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.reg.User != "" {
		req.SetBasicAuth(p.reg.User, p.reg.Password)
	}
	return http.DefaultClient.Do(req)
}

// wantStatus closes resp, an error naming the request and the registry's
// answer unless its status is want.
func wantStatus(resp *http.Response, want int) error {
	defer resp.Body.Close()
	if resp.StatusCode == want {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return fmt.Errorf("%s %s: %s, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, want, bytes.TrimSpace(b))
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
