package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fake builds this command into dir under name (nsc or
// docker-credential-nsc) and returns its path.
func fake(t *testing.T, dir, name string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// call runs bin with the backend b (its config, docker config and home in
// a new dir), returning stdout and stderr.
func call(t *testing.T, bin string, b Backend, stdin string, args ...string) (string, string, error) {
	t.Helper()
	return callIn(t, t.TempDir(), bin, b, stdin, args...)
}

// callIn is call with its files in dir.
func callIn(t *testing.T, dir, bin string, b Backend, stdin string, args ...string) (string, string, error) {
	t.Helper()
	data, _ := json.Marshal(b)
	path := filepath.Join(dir, "backend.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"FAKENSC_BACKEND=" + path, "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "DOCKER_CONFIG=" + filepath.Join(dir, "docker")}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// TestErrorsAsTheRealTools: nsc prints a refusal by the API as a Failed:
// block worded by its code, a local error between two frames, and after
// either its help footer, whose last line is about llms.txt;
// docker-credential-nsc frames its errors (not found included) on stderr
// with no footer and nothing on stdout.
func TestErrorsAsTheRealTools(t *testing.T) {
	dir := t.TempDir()
	nsc := fake(t, dir, "nsc")
	helper := filepath.Join(dir, "docker-credential-nsc")
	if err := os.Symlink(nsc, helper); err != nil {
		t.Fatal(err)
	}
	const jwt = "e30.eyJhdWQiOiJmZWRlcmF0aW9uLm5hbWVzcGFjZWFwaXMuY29tIn0.sig" // aud: Namespace's
	for _, tc := range []struct {
		name    string
		bin     string
		backend Backend
		args    []string
		block   string
		footer  bool
	}{
		{"refused exchange", nsc, Backend{TenantID: "tnt", Reject: "auth"}, []string{"auth", "exchange-oidc-token", "--token", jwt, "--tenant_id", "tnt"},
			"\nFailed: it seems that's not allowed. We got: tenant tnt does not trust this identity\n\n", true},
		{"unknown tenant", nsc, Backend{TenantID: "tnt"}, []string{"auth", "exchange-oidc-token", "--token", jwt, "--tenant_id", "other"},
			"\nFailed: no tenant \"other\" (NotFound).\n", true},
		{"setup before login", nsc, Backend{TenantID: "tnt"}, []string{"docker", "buildx", "setup"},
			"\n" + frame + "\nFailed: not logged in: run nsc auth login\n" + frame + "\n", true},
		{"helper: not found", helper, Backend{TenantID: "tnt", RegistryPassword: "pw"}, []string{"get"},
			"\n" + frame + "\nFailed: credentials not found in native keychain\n" + frame + "\n", false},
	} {
		stdout, stderr, err := call(t, tc.bin, tc.backend, "ghcr.io", tc.args...)
		if err == nil || stdout != "" {
			t.Errorf("%s: err %v, stdout %q; want a failure and nothing on stdout", tc.name, err, stdout)
		}
		if !strings.HasPrefix(stderr, tc.block) {
			t.Errorf("%s: stderr %q, want it to open with %q", tc.name, stderr, tc.block)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if got := strings.HasPrefix(last, "Agents: fetch ") && strings.Contains(last, "llms.txt"); got != tc.footer {
			t.Errorf("%s: last line %q; footer about llms.txt %v, want %v", tc.name, last, got, tc.footer)
		}
		if !tc.footer && last != frame {
			t.Errorf("%s: last line %q, want the frame", tc.name, last)
		}
	}
}

// TestSetupWritesNodesInTheAPIsOrder: one node per platform, amd64 first,
// whatever order the backend file lists them in, as nsc writes what
// Namespace's API lists.
func TestSetupWritesNodesInTheAPIsOrder(t *testing.T) {
	dir := t.TempDir()
	nsc := fake(t, dir, "nsc")
	pem := filepath.Join(dir, "x.pem")
	os.WriteFile(pem, []byte("PEM\n"), 0o600)
	b := Backend{TenantID: "tnt"}
	for _, p := range []string{"linux/arm64", "linux/amd64"} {
		b.Builders = append(b.Builders, Builder{Platform: p, Endpoint: "tcp://" + p[6:] + ":443", ServerCA: pem, ClientCert: pem, ClientKey: pem})
	}
	home := t.TempDir()
	if _, stderr, err := callIn(t, home, nsc, b, "", "auth", "exchange-aws-cognito-token", "--aws_region", "r", "--identity_pool", "p", "--tenant_id", "tnt"); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	if _, stderr, err := callIn(t, home, nsc, b, "", "docker", "buildx", "setup", "--name", "ns"); err != nil {
		t.Fatalf("setup: %v\n%s", err, stderr)
	}
	data, err := os.ReadFile(filepath.Join(home, "docker", "buildx", "instances", "ns"))
	var ng struct {
		Nodes []struct{ Name, Endpoint string }
	}
	if err != nil || json.Unmarshal(data, &ng) != nil || len(ng.Nodes) != 2 || ng.Nodes[0].Name != "amd64" || ng.Nodes[1].Endpoint != "tcp://arm64:443" {
		t.Errorf("instance %s (%v), want amd64 then arm64", data, err)
	}
}

// TestAPILatencyPerCall: each call to Namespace's API takes api_latency,
// as many times as the command makes calls: the exchange one, the setup of
// two platforms four (the profile, the client certificate, each platform's
// builder configuration). Lower bounds only: the latency is slept.
func TestAPILatencyPerCall(t *testing.T) {
	dir := t.TempDir()
	nsc := fake(t, dir, "nsc")
	pem := filepath.Join(dir, "x.pem")
	os.WriteFile(pem, []byte("PEM\n"), 0o600)
	b := Backend{TenantID: "tnt", APILatency: "100ms"}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		b.Builders = append(b.Builders, Builder{Platform: p, Endpoint: "tcp://" + p[6:] + ":443", ServerCA: pem, ClientCert: pem, ClientKey: pem})
	}
	home := t.TempDir()
	for _, tc := range []struct {
		args  []string
		calls int
	}{
		{[]string{"auth", "exchange-aws-cognito-token", "--aws_region", "r", "--identity_pool", "p", "--tenant_id", "tnt"}, 1},
		{[]string{"docker", "buildx", "setup"}, 4},
	} {
		start := time.Now()
		if _, stderr, err := callIn(t, home, nsc, b, "", tc.args...); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr)
		}
		if took := time.Since(start); took < time.Duration(tc.calls)*100*time.Millisecond {
			t.Errorf("%v took %s, want at least %d calls of 100ms", tc.args, took, tc.calls)
		}
	}
}
