package bootstrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/config"
)

// hostStore is a host-level BUILDX_CONFIG store with one builder of the
// host's, current for every context.
func hostStore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "host-buildx")
	for name, data := range map[string]string{
		"instances/shared":       `{"Name":"shared","Driver":"remote","Nodes":[{"Name":"shared0","Endpoint":"tcp://10.0.0.7:1234"}]}`,
		"current":                `{"Key":"unix:///var/run/docker.sock","Name":"shared","Global":true}`,
		"buildkitd.default.toml": "debug = true\n",
		"activity/shared":        "2026-01-01T00:00:00Z",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A host-level BUILDX_CONFIG: the job's buildx uses the job's own store,
// seeded with the host store's builders, and dockhand's builder is the
// current one there; the host store is not written.
func TestHostBuildxConfig(t *testing.T) {
	host := hostStore(t)
	jobDir := t.TempDir()
	dc := filepath.Join(jobDir, "docker")
	if err := SeedDockerConfig(dc, UserDockerConfig{}, Credentials{}, "/usr/local/bin/dockhand"); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dc, "buildx")
	e := agentenv.FromSlice([]string{"PATH=/usr/bin", BuildxConfigVar + "=" + host})
	line, err := adoptHostStore(e, store)
	if err != nil || !strings.Contains(line, "1 builder(s) copied") {
		t.Fatalf("adoptHostStore: %q, %v", line, err)
	}
	// dockhand's choice, as wireBuilder makes it.
	b := buildx.Builder{Kind: "remote", Name: buildx.RemoteName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: "n0", Endpoint: "tcp://10.0.0.9:1234"}}}
	if err := buildx.WriteInstance(t.Context(), dc, b); err != nil {
		t.Fatal(err)
	}
	if err := buildx.SetCurrent(t.Context(), store, "unix:///var/run/docker.sock", buildx.RemoteName); err != nil {
		t.Fatal(err)
	}
	out := exports(e, jobDir, "")
	if got, _ := out.Get(BuildxConfigVar); got != store {
		t.Fatalf("the job's BUILDX_CONFIG = %q, want its own store %s", got, store)
	}
	lookup := config.Getter(out)
	if got := buildx.SelectedBuilderName(lookup); got != buildx.RemoteName {
		t.Errorf("the job's buildx runs on %q, want dockhand's %s", got, buildx.RemoteName)
	}
	if _, err := buildx.ReadInstance(dc, "remote", "shared"); err != nil {
		t.Errorf("the host's builder is not usable by name in the job: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(store, "instances", "shared")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("copied instance: %v %v, want mode 0600", fi, err)
	}
	if _, err := os.Stat(filepath.Join(store, "activity", "shared")); !os.IsNotExist(err) {
		t.Errorf("the host's activity records were copied: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, "instances", buildx.RemoteName)); !os.IsNotExist(err) {
		t.Errorf("dockhand's builder reached the host store: %v", err)
	}

	// An environment hook that sets the host store after the bootstrap:
	// the job keeps its own store and current builder.
	hookEnv := agentenv.FromMap(map[string]string{JobDirVar: jobDir, DockerConfigVar: dc, BuildxConfigVar: host})
	var hookOut, log strings.Builder
	if err := EnvironmentHook(t.Context(), hookEnv, &hookOut, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hookOut.String(), "export BUILDX_CONFIG='"+store+"'") {
		t.Errorf("the hook does not point buildx back at the job's store:\n%s", hookOut.String())
	}
	if got := buildx.CurrentBuilder(store, "unix:///var/run/docker.sock"); got != buildx.RemoteName {
		t.Errorf("after the hook the current builder is %q, want dockhand's", got)
	}

	// No host store: nothing exported, nothing said.
	plain := agentenv.FromSlice([]string{"PATH=/usr/bin"})
	if line, err := adoptHostStore(plain, store); line != "" || err != nil {
		t.Errorf("without BUILDX_CONFIG: %q, %v", line, err)
	}
	if _, ok := exports(plain, jobDir, "").Get(BuildxConfigVar); ok {
		t.Error("BUILDX_CONFIG exported without a host store")
	}
}
