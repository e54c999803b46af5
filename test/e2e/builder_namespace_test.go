package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder/namespace"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// buildFakeNsc builds test/fakensc as `nsc` into a temporary dir.
func buildFakeNsc(t *testing.T) string {
	t.Helper()
	root := harness.MustRepoRoot(t)
	bin := filepath.Join(userTempDir(t), "nsc")
	cmd := exec.Command("go", "build", "-o", bin, "./test/fakensc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the fake nsc: %v\n%s", err, out)
	}
	return bin
}

type nscBackend struct {
	TenantID string `json:"tenant_id"`
	Reject   string `json:"reject,omitempty"`
	Latency  string `json:"latency,omitempty"`
	// APILatency: what each of the command's calls to Namespace's API takes
	APILatency string          `json:"api_latency,omitempty"`
	Hang       bool            `json:"hang,omitempty"`
	Builders   []nscBuilderDef `json:"builders"`
	Log        string          `json:"log"`
	// RegistryPassword: what the fake docker-credential-nsc serves for nscr.io
	RegistryPassword string `json:"registry_password,omitempty"`
}

type nscBuilderDef struct {
	Platform   string `json:"platform"`
	Endpoint   string `json:"endpoint"`
	ServerCA   string `json:"server_ca"`
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key"`
}

// newNscBackend is tenant tnt_e2e whose amd64 builder is the pool's node,
// nsc's calls logged to calls.
func newNscBackend(p *remotePool, node, calls string) nscBackend {
	return nscBackend{TenantID: "tnt_e2e", Log: calls, Builders: []nscBuilderDef{{
		Platform: "linux/amd64", Endpoint: node,
		ServerCA: p.fleet.Client.CA, ClientCert: p.fleet.Client.Cert, ClientKey: p.fleet.Client.Key,
	}}}
}

func writeBackend(t *testing.T, path string, b nscBackend) {
	t.Helper()
	data, _ := json.Marshal(b)
	writeFile(t, path, string(data))
}

// TestNamespaceBuilderAndFallback: on a Namespace queue, the job
// authenticates with its Buildkite OIDC token through nsc, nsc sets the
// builder up in the job's docker config (here pointing at a local mTLS
// buildkitd) and the build runs there; the job's copy of the tenant token is
// in its job dir, nsc's state (its certificates) in the host's 0700
// Namespace dir, shared with the host's later jobs. When nsc auth fails,
// the job falls back to the remote pool with one warning saying why.
func TestNamespaceBuilderAndFallback(t *testing.T) {
	t.Parallel()
	p := startPool(t, 2)
	nsNode, poolNode := p.eps[0], p.eps[1]
	nsc := buildFakeNsc(t)
	r := newRig(t)
	backendPath := filepath.Join(r.tempDir(), "backend.json")
	calls := filepath.Join(r.tempDir(), "nsc-calls.log")
	backend := newNscBackend(p, nsNode, calls)
	writeBackend(t, backendPath, backend)
	// Namespace's setup shares probe_timeout's deadline: 3s leaves room for
	// a loaded CI machine (the deadline itself is TestNamespaceChosenWithin
	// TheProbeDeadline's subject).
	p.probeTimeout = "3s"
	writeFile(t, r.config, p.config(r.state, p.fleet.Client, []string{poolNode}, `builders = ["namespace", "remote"]
[namespace]
nsc = "`+nsc+`"
tenant_id = "tnt_e2e"`))

	ref := p.kit.Registry.Host + "/namespace/app"
	command := func(tag string) string {
		return `echo "token-env=[$NSC_TOKEN_FILE]"
tok="$DOCKHAND_JOB_DIR/nsc/config/ns/token.json"
test -f "$tok" && stat -c 'token-mode=%a' "$tok"
printf 'FROM ` + p.kit.BaseImage + `\nRUN echo ` + tag + ` > /t\n' > Dockerfile
docker buildx build --progress plain --push -t ` + ref + ":" + tag + " ."
	}
	env := map[string]string{"FAKENSC_BACKEND": backendPath, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}

	id, agent := r.start(command("ns"), env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("namespace job: %+v\n%s", f, log)
	}
	if ep, _ := chosen(t, log); ep != nsNode {
		t.Errorf("built on %s, want the Namespace builder %s\n%s", ep, nsNode, section(log))
	}
	if !strings.Contains(log, `builder: namespace "`+buildx.NamespaceName+`"`) {
		t.Errorf("the log does not name the namespace builder:\n%s", section(log))
	}
	if !strings.Contains(log, "token-mode=600") {
		t.Errorf("the job's nsc token is not a 0600 file in its job dir:\n%s", log)
	}
	if !strings.Contains(log, "token-env=[]") {
		t.Errorf("NSC_TOKEN_FILE is in the job's environment, where it would shadow a step's own nsc login:\n%s", log)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[nsNode])); n != 1 {
		t.Errorf("the Namespace builder ran %d builds, want 1", n)
	}
	if code := manifestStatus(t, p.kit.Registry.Host, "namespace/app", "ns"); code != 200 {
		t.Errorf("image: HTTP %d", code)
	}
	if got := r.srv.OIDCAudiences(); !slices.Contains(got, namespace.Audience) {
		t.Errorf("OIDC audiences requested %q, want %s", got, namespace.Audience)
	}
	tok := r.srv.OIDCToken(id, namespace.Audience)
	if tok == "" || strings.Contains(log, tok) {
		t.Error("the OIDC token is in the job log")
	}
	// It is on nsc's command line while the exchange runs: it lives two
	// minutes (the agent's --lifetime, honoured by the API).
	if got := oidcLifetime(t, tok); got != 2*time.Minute {
		t.Errorf("the Namespace OIDC token lives %s, want 2m0s", got)
	}
	callLog, _ := os.ReadFile(calls)
	for _, want := range []string{
		"nsc auth exchange-oidc-token --token <token> --tenant_id tnt_e2e",
		"nsc docker buildx setup --name " + buildx.NamespaceName + " --state " + r.state + "/namespace/buildx/setup-tnt_e2e-",
	} {
		if !strings.Contains(string(callLog), want) {
			t.Errorf("nsc was not called with %q; calls:\n%s", want, callLog)
		}
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs (with nsc's token) left behind: %q", left)
	}

	// Namespace refuses the token: the job falls back to the pool. The
	// host's shared tenant token is removed first, or the job would not
	// need an exchange.
	backend.Reject = "auth"
	writeBackend(t, backendPath, backend)
	if err := os.RemoveAll(filepath.Join(r.state, "namespace")); err != nil {
		t.Fatal(err)
	}
	id, agent = r.start(command("fallback"), env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("fallback job: %+v\n%s", f, log)
	}
	if ep, _ := chosen(t, log); ep != poolNode {
		t.Errorf("built on %s, want the pool's %s\n%s", ep, poolNode, section(log))
	}
	// The reason is nsc's own (its Failed: block), not its help footer's
	// last line, in the log and in the metrics line.
	const reason = "nsc auth exchange-oidc-token: it seems that's not allowed. We got: tenant tnt_e2e does not trust this identity"
	// The fallback is a warning: the collapsed section is expanded after it,
	// once, as the agent expands a group after its own warnings.
	fallbacks := 0
	logLines := strings.Split(log, "\n")
	for i, l := range logLines {
		if strings.Contains(l, "dockhand: warning: builder: namespace failed: "+reason) &&
			strings.HasSuffix(strings.TrimSpace(l), "trying the next builder kind") {
			fallbacks++
			if i+1 == len(logLines) || strings.TrimSpace(logLines[i+1]) != "^^^ +++" {
				t.Errorf("the fallback warning does not expand the section:\n%s", log)
			}
		}
	}
	if fallbacks != 1 || strings.Count(log, "^^^ +++") != 1 {
		t.Errorf("want one warning saying namespace failed and why, expanding the section once:\n%s", log)
	}
	metrics, _ := os.ReadFile(filepath.Join(r.state, "metrics.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(metrics)), "\n")
	var line struct{ FallbackReasons []string }
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &line); err != nil ||
		len(line.FallbackReasons) != 1 || !strings.Contains(line.FallbackReasons[0], reason) {
		t.Errorf("the metrics line's fallback reasons %q (%v), want nsc's: %s", line.FallbackReasons, err, reason)
	}
	if n := len(histories(t, p.kit.Kit, p.nodes[poolNode])); n != 1 {
		t.Errorf("the pool ran %d builds, want 1", n)
	}
}

// TestNamespaceRegistryThroughTheHelper: a job on Namespace pushes to a
// registry standing in for nscr.io (htpasswd, mapped with
// registry.nscr_aliases as registry.ecr_aliases maps ECR) with no docker
// login of its own: buildx asks dockhand's credential helper, whose
// Namespace route asks docker-credential-nsc (the fake, with the job's
// tenant token) for nscr.io.
func TestNamespaceRegistryThroughTheHelper(t *testing.T) {
	t.Parallel()
	const password = "nscr-e2e-password"
	p := startPool(t, 1, harness.Options{RegistryUser: "token", RegistryPassword: password})
	nsc := buildFakeNsc(t)
	helperDir := userTempDir(t)
	if err := os.Symlink(nsc, filepath.Join(helperDir, "docker-credential-nsc")); err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	calls := filepath.Join(r.tempDir(), "nsc-calls.log")
	backend := filepath.Join(r.tempDir(), "backend.json")
	writeBackend(t, backend, nscBackend{TenantID: "tnt_e2e", Log: calls, RegistryPassword: password, Builders: []nscBuilderDef{{
		Platform: "linux/amd64", Endpoint: p.eps[0],
		ServerCA: p.fleet.Client.CA, ClientCert: p.fleet.Client.Cert, ClientKey: p.fleet.Client.Key,
	}}})
	reg := p.kit.Registry.Host
	writeFile(t, r.config, fmt.Sprintf(`state_dir = %q
probe_timeout = "3s"
builders = ["namespace"]
[namespace]
nsc = %q
tenant_id = "tnt_e2e"
[registry]
nscr_aliases = ["%s=nscr.io"]
`, r.state, nsc, reg))
	command := fmt.Sprintf(`export PATH=%s:$PATH
printf 'FROM %s\nRUN echo pushed-through-nsc > /n\n' > Dockerfile
docker buildx build --progress plain --push -t %s/ws/app:1 .
! grep -qs "$REGISTRY_PASSWORD" "$DOCKER_CONFIG/config.json" "$DOCKER_CONFIG/../credentials.json"`, helperDir, p.kit.BaseImage, reg)
	id, agent := r.start(command, map[string]string{"FAKENSC_BACKEND": backend, "REGISTRY_PASSWORD": password})
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit %s\n%s", f.ExitStatus, log)
	}
	if code := authedManifestStatus(t, reg, "token", password, "ws/app", "1"); code != 200 {
		t.Errorf("ws/app:1 on the nscr.io stand-in: HTTP %d, want the pushed image", code)
	}
	data, _ := os.ReadFile(calls)
	if !strings.Contains(string(data), "docker-credential-nsc get") {
		t.Errorf("docker-credential-nsc was never asked; calls:\n%s", data)
	}
	if strings.Contains(log, password) {
		t.Errorf("the registry password is in the job log")
	}
}

// oidcLifetime is what an agent OIDC token was issued for: exp - iat.
func oidcLifetime(t *testing.T, token string) time.Duration {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct{ Iat, Exp int64 }
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil {
		t.Fatalf("the token's claims: %v", err)
	}
	return time.Duration(claims.Exp-claims.Iat) * time.Second
}
