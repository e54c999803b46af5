package buildx

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/env"
)

// fakeNSC builds the repository's nsc double (test/fakensc).
func fakeNSC(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nsc")
	cmd := exec.Command("go", "build", "-o", bin, "../test/fakensc")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake nsc: %v\n%s", err, out)
	}
	return bin
}

func TestNamespaceCognitoSetUp(t *testing.T) {
	nsc := fakeNSC(t)
	dir := t.TempDir()
	for _, f := range []string{"ca.pem", "client.pem", "client-key.pem"} {
		os.WriteFile(filepath.Join(dir, f), []byte("PEM "+f+"\n"), 0o600)
	}
	backend := filepath.Join(dir, "backend.json")
	write := func(reject string) {
		data, _ := json.Marshal(map[string]any{"tenant_id": "tnt", "reject": reject, "builders": []map[string]string{
			{"platform": "linux/amd64", "endpoint": "tcp://amd64.build.example:443", "server_ca": filepath.Join(dir, "ca.pem"),
				"client_cert": filepath.Join(dir, "client.pem"), "client_key": filepath.Join(dir, "client-key.pem")},
			{"platform": "linux/arm64", "endpoint": "tcp://arm64.build.example:443", "server_ca": filepath.Join(dir, "ca.pem"),
				"client_cert": filepath.Join(dir, "client.pem"), "client_key": filepath.Join(dir, "client-key.pem")},
		}})
		os.WriteFile(backend, data, 0o600)
	}
	write("")
	job := filepath.Join(dir, "job")
	dc := filepath.Join(job, "docker")
	os.MkdirAll(dc, 0o700)
	n := Namespace{NSC: nsc, Auth: "cognito", TenantID: "tnt", AWSRegion: "us-east-1", IdentityPool: "pool",
		JobDir: job, DockerConfig: dc, Env: []string{"FAKENSC_BACKEND=" + backend, "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "host-config")}}
	b, exports, err := n.SetUp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b.Kind != env.BuilderNamespace || b.Name != NamespaceName || len(b.Nodes) != 2 || b.Nodes[1].Platforms[0] != "linux/arm64" ||
		!strings.HasPrefix(b.Nodes[0].TLS.Cert, filepath.Join(job, "nsc", "state")) {
		t.Errorf("builder = %+v", b)
	}
	if exports[NamespaceTokenVar] != n.TokenFile() {
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
	_, _, err = n.SetUp(context.Background())
	if err == nil || err.Error() != "nsc auth exchange-aws-cognito-token: it seems that's not allowed. We got: tenant tnt does not trust this identity" {
		t.Errorf("refused auth: %v", err)
	}
	n.Auth = "oidc"
	if _, _, err := n.SetUp(context.Background()); err == nil || !strings.Contains(err.Error(), "buildkite-agent not found") {
		t.Errorf("oidc without buildkite-agent: %v", err)
	}
}
