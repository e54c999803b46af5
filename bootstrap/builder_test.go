package bootstrap

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

func TestChooseBuilderWhenAllAreDown(t *testing.T) {
	state := t.TempDir()
	job := filepath.Join(state, "jobs", "j")
	os.MkdirAll(filepath.Join(job, "docker"), 0o700)
	cfg := config.Default("")
	cfg.Builders = []string{config.BuilderRemote}
	cfg.Remote.Endpoints = []string{"tcp://10.9.9.9:1234"}
	o := Options{Config: cfg, Env: agentenv.FromSlice([]string{"PATH=" + t.TempDir()}),
		Self: filepath.Join(t.TempDir(), "dockhand")} // no dockhand-cloud: every probe fails

	_, jb, warning, err := chooseBuilder(t.Context(), o, state, job)
	var none *builder.NoBuilderError
	if !errors.As(err, &none) || jb.Kind != "" || warning != nil {
		t.Fatalf("all down: %+v %v %v", jb, warning, err)
	}

	cfg.BuildersOptional = true
	sel, jb, warning, err := chooseBuilder(t.Context(), o, state, job)
	if err != nil || jb.Kind != "" || warning == nil || warning.Severity != joblog.Warning ||
		!strings.Contains(warning.Text, "no builder available: remote: tcp://10.9.9.9:1234: probe failed") ||
		!strings.Contains(warning.Text, "builders_optional is set") {
		t.Fatalf("optional: %+v %v %v", jb, warning, err)
	}
	lines := builderLines(sel, warning)
	if len(lines) == 0 || lines[0] != *warning || slices.ContainsFunc(lines, func(l joblog.Line) bool { return strings.Contains(l.Text, "none configured") }) {
		t.Errorf("log lines: %v", lines)
	}
	e := agentenv.New()
	setBuilderEnv(e, sel)
	if _, ok := e.Get(buildx.BuilderVar); ok {
		t.Error("BUILDX_BUILDER exported without a builder")
	}
}

// With dockhand's builder the job store's current builder, `docker build`
// reaches it through the builder alias (as after `docker buildx install`);
// the rest of the job's config is kept.
func TestAliasBuilder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	cfg, err := JobConfig(UserDockerConfig{Settings: map[string]json.RawMessage{"detachKeys": json.RawMessage(`"ctrl-x"`)}}, Credentials{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := updateJobConfig(path, aliasBuilder); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var got struct {
		Aliases    map[string]string `json:"aliases"`
		DetachKeys string            `json:"detachKeys"`
	}
	if err := json.Unmarshal(data, &got); err != nil || got.Aliases["builder"] != "buildx" || got.DetachKeys != "ctrl-x" {
		t.Errorf("config after the alias: %s (%v)", data, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode: %v %v", fi, err)
	}
}

// The job's config names dockhand's helper for the registries it can name,
// the cache repository's and registry.ecr_registries among them; a
// credsStore only with registry.creds_store.
func TestJobCredentials(t *testing.T) {
	cfg := config.Default("")
	cfg.Cache.Repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/buildkit-cache"
	cfg.Registry.ECRRegistries = []string{"210987654321.dkr.ecr.eu-west-1.amazonaws.com"}
	c := jobCredentials(cfg)
	for _, h := range []string{"123456789012.dkr.ecr.us-east-1.amazonaws.com", "210987654321.dkr.ecr.eu-west-1.amazonaws.com", "nscr.io", "public.ecr.aws"} {
		if !slices.Contains(c.Helpers, h) || c.Store {
			t.Errorf("credentials %+v: want %s in credHelpers, no credsStore", c, h)
		}
	}
	cfg.Registry.CredsStore = true
	if c := jobCredentials(cfg); !c.Store || len(c.Helpers) != 0 {
		t.Errorf("with registry.creds_store: %+v", c)
	}
}
