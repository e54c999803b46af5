package namespace

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/config"
)

// fakeNSC builds the repository's nsc double (test/fakensc).
func fakeNSC(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nsc")
	cmd := exec.Command("go", "build", "-o", bin, "../../test/fakensc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake nsc: %v\n%s", err, out)
	}
	return bin
}

// nsBackend writes a fake Namespace backend in dir for tenant tnt with
// builders for platforms (in that order), refusing logins when reject is
// "auth"; it returns a writer for later changes and a cognito Namespace
// setting a job in dir/job up with nsc.
func nsBackend(t *testing.T, nsc, dir string, platforms ...string) (func(reject string), Namespace) {
	t.Helper()
	for _, f := range []string{"ca.pem", "client.pem", "client-key.pem"} {
		os.WriteFile(filepath.Join(dir, f), []byte("PEM "+f+"\n"), 0o600)
	}
	backend := filepath.Join(dir, "backend.json")
	write := func(reject string) {
		var builders []map[string]string
		for _, p := range platforms {
			arch := strings.TrimPrefix(p, "linux/")
			builders = append(builders, map[string]string{"platform": p, "endpoint": "tcp://" + arch + ".build.example:443",
				"server_ca": filepath.Join(dir, "ca.pem"), "client_cert": filepath.Join(dir, "client.pem"), "client_key": filepath.Join(dir, "client-key.pem")})
		}
		data, _ := json.Marshal(map[string]any{"tenant_id": "tnt", "reject": reject, "builders": builders})
		os.WriteFile(backend, data, 0o600)
	}
	write("")
	job := filepath.Join(dir, "job")
	dc := filepath.Join(job, "docker")
	os.MkdirAll(dc, 0o700)
	return write, Namespace{NSC: nsc, Auth: "cognito", TenantID: "tnt", AWSRegion: "us-east-1", IdentityPool: "pool",
		JobDir: job, DockerConfig: dc, Env: []string{"FAKENSC_BACKEND=" + backend, "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "host-config")}}
}

func TestNamespaceCognitoSetUp(t *testing.T) {
	nsc := fakeNSC(t)
	dir := t.TempDir()
	write, n := nsBackend(t, nsc, dir, "linux/amd64", "linux/arm64")
	job := n.JobDir
	b, exports, err := n.SetUp(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != config.BuilderNamespace || b.Name != buildx.NamespaceName || len(b.Nodes) != 2 || b.Nodes[1].Platforms[0] != "linux/arm64" ||
		!strings.HasPrefix(b.Nodes[0].TLS.Cert, filepath.Join(job, "nsc", "state")) {
		t.Errorf("builder = %+v", b)
	}
	if exports[TokenVar] != n.TokenFile() {
		t.Errorf("exports = %v", exports)
	}
	fi, err := os.Stat(n.TokenFile())
	if err != nil || fi.Mode().Perm() != 0o600 || !strings.HasPrefix(n.TokenFile(), job) {
		t.Errorf("token file %s: %v", n.TokenFile(), err)
	}
	// nsc's own config dir on the host is never written.
	if _, err := os.Stat(filepath.Join(dir, "host-config")); !os.IsNotExist(err) {
		t.Errorf("nsc wrote outside the job dir: %v", err)
	}

	write("auth")
	_, _, err = n.SetUp(t.Context())
	if err == nil || err.Error() != "nsc auth exchange-aws-cognito-token: it seems that's not allowed. We got: tenant tnt does not trust this identity" {
		t.Errorf("refused auth: %v", err)
	}
	n.Auth = "oidc"
	if _, _, err := n.SetUp(t.Context()); err == nil || !strings.Contains(err.Error(), "buildkite-agent not found") {
		t.Errorf("oidc without buildkite-agent: %v", err)
	}
}

// TestNamespaceHostPlatformFirst: nsc writes Namespace's nodes in the API's
// order, amd64 first, and buildx builds on the first node when no
// --platform is given; on an arm64 host the arm64 node goes first, in the
// builder SetUp returns and in the instance file buildx reads, so `docker
// build -t x . && docker run x` gets an arm64 image. On an amd64 host nsc's
// file is left as it wrote it.
func TestNamespaceHostPlatformFirst(t *testing.T) {
	nsc := fakeNSC(t)
	for _, tc := range []struct{ host, first string }{
		{"linux/arm64", "linux/arm64"},
		{"linux/amd64", "linux/amd64"},
		{"linux/riscv64", "linux/amd64"}, // no node of its own: nsc's order
	} {
		dir := t.TempDir()
		_, n := nsBackend(t, nsc, dir, "linux/arm64", "linux/amd64") // the API lists amd64 first all the same
		n.HostPlatform = tc.host
		b, _, err := n.SetUp(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Nodes) != 2 || b.Nodes[0].Platforms[0] != tc.first {
			t.Errorf("host %s: nodes %+v, want %s first", tc.host, b.Nodes, tc.first)
		}
		onDisk, err := buildx.ReadInstance(n.DockerConfig, config.BuilderNamespace, buildx.NamespaceName)
		if err != nil || len(onDisk.Nodes) != 2 || onDisk.Nodes[0].Platforms[0] != tc.first ||
			onDisk.Nodes[0].TLS != b.Nodes[0].TLS || !strings.HasPrefix(onDisk.Nodes[0].Endpoint, "tcp://"+strings.TrimPrefix(tc.first, "linux/")) {
			t.Errorf("host %s: buildx reads %+v (%v), want the %s node first with its own endpoint and certificates", tc.host, onDisk, err, tc.first)
		}
	}
}
