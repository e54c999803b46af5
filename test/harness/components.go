package harness

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a running distribution registry on loopback, plain HTTP.
type Registry struct {
	Host     string // 127.0.0.1:PORT
	User     string // set when started with auth
	Password string
}

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	Name     string // log and data name; default "registry"
	User     string // with Password: require htpasswd basic auth
	Password string
}

// StartRegistry starts a registry with a fresh storage root.
func (k *Kit) StartRegistry(o RegistryOptions) (*Registry, error) {
	if o.Name == "" {
		o.Name = "registry"
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(k.Dir, o.Name)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	auth := ""
	if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: dockhand-test\n    path: %s\n", htpasswd)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, auth)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p, err := k.start(o.Name, []string{"OTEL_TRACES_EXPORTER=none"}, k.Bin("registry"), "serve", configPath)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(httpReady("http://" + addr + "/v2/")); err != nil {
		return nil, err
	}
	return &Registry{Host: addr, User: o.User, Password: o.Password}, nil
}

// Buildkitd is a running buildkitd with the OCI worker.
type Buildkitd struct {
	Addr    string // unix:///…/buildkitd.sock
	TCPAddr string // tcp://127.0.0.1:PORT when started with TCP (mTLS when TLS is set)
	Root    string
	proc    *proc
}

// StartBuildkitd starts buildkitd with a fresh root. insecureRegistries are
// host:port registries it reaches over plain HTTP.
func (k *Kit) StartBuildkitd(name string, insecureRegistries ...string) (*Buildkitd, error) {
	return k.StartBuildkitdWith(BuildkitdOptions{Name: name, InsecureRegistries: insecureRegistries})
}

// S3 is a running S3-compatible server.
type S3 struct {
	Endpoint string // http://127.0.0.1:PORT
	Bucket   string
}

// StartS3 starts an in-memory S3-compatible server with one bucket.
func (k *Kit) StartS3(bucket string) (*S3, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := k.start("s3server", nil, k.Bin("s3server"),
		"-host", addr, "-backend", "memory", "-initialbucket", bucket, "-quiet")
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(httpReady("http://" + addr + "/")); err != nil {
		return nil, err
	}
	return &S3{Endpoint: "http://" + addr, Bucket: bucket}, nil
}

// DockerConfig writes a docker config dir whose buildx plugin is the real one
// and whose builder NAME is a remote-driver builder on buildkitd. It returns
// the environment a docker CLI needs to use it.
func (k *Kit) DockerConfig(dir, builder string, b *Buildkitd) ([]string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "cli-plugins"), 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "buildx", "instances"), 0o700); err != nil {
		return nil, err
	}
	if err := os.Symlink(k.Bin("docker-buildx"), filepath.Join(dir, "cli-plugins", "docker-buildx")); err != nil && !os.IsExist(err) {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}\n"), 0o600); err != nil {
		return nil, err
	}
	instance := map[string]any{
		"Name":   builder,
		"Driver": "remote",
		"Nodes": []map[string]any{{
			"Name": builder + "0", "Endpoint": b.Addr, "Platforms": nil,
			"DriverOpts": map[string]string{}, "Flags": nil, "Files": nil,
		}},
		"Dynamic": false,
	}
	data, err := json.Marshal(instance)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "buildx", "instances", strings.ToLower(builder)), data, 0o600); err != nil {
		return nil, err
	}
	return []string{"DOCKER_CONFIG=" + dir, "BUILDX_BUILDER=" + builder, "BUILDX_NO_DEFAULT_ATTESTATIONS=1"}, nil
}

// Command prepares a real component (or any program) with the kit's PATH and
// extra environment, in dir.
func (k *Kit) Command(dir string, env []string, name string, args ...string) *exec.Cmd {
	path := name
	if !strings.Contains(name, "/") {
		if _, err := os.Stat(k.Bin(name)); err == nil {
			path = k.Bin(name)
		}
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PATH="+k.Path()), env...)
	return cmd
}

// BaseImageDockerfile makes a small image from busybox-static so Dockerfiles
// can RUN shell commands.
const BaseImageDockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
`

// PushBaseImage puts the busybox base image into the registry as
// REGISTRY/dockhand/busybox:latest, which it returns. The image is built
// once, with buildctl on b, into an OCI layout cached per busybox and
// Dockerfile (BaseImageLayout); each registry gets a copy over the registry
// API, which takes milliseconds where a build took seconds.
func (k *Kit) PushBaseImage(b *Buildkitd, r *Registry) (string, error) {
	layout, err := k.BaseImageLayout(b)
	if err != nil {
		return "", err
	}
	if err := PushLayout(layout, r, "dockhand/busybox", "latest"); err != nil {
		return "", fmt.Errorf("copying the base image into %s: %w", r.Host, err)
	}
	return r.Host + "/dockhand/busybox:latest", nil
}

// WriteDockerAuth writes a docker config.json with basic auth for r into dir.
func WriteDockerAuth(dir string, r *Registry) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	auth := map[string]any{"auths": map[string]any{r.Host: map[string]string{
		"auth": basicAuth(r.User, r.Password),
	}}}
	data, err := json.Marshal(auth)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// HeadManifest sends an anonymous manifest HEAD for repo:tag to the
// registry at host and returns the status and the Docker-Content-Digest
// header. It accepts OCI and Docker manifests and indexes.
func HeadManifest(host, repo, tag string) (status int, digest string, err error) {
	req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
	}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Docker-Content-Digest"), nil
}
