package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/env"
)

func TestChooseBuilderWhenAllAreDown(t *testing.T) {
	state := t.TempDir()
	job := filepath.Join(state, "jobs", "j")
	os.MkdirAll(filepath.Join(job, "docker"), 0o700)
	cfg := env.Default("")
	cfg.Builders = []string{env.BuilderRemote}
	cfg.Remote.Endpoints = []string{"tcp://10.9.9.9:1234"}
	o := Options{Config: cfg, Env: agentenv.FromSlice([]string{"PATH=" + t.TempDir()}),
		Self: filepath.Join(t.TempDir(), "dockhand")} // no dockhand-cloud: every probe fails

	_, jb, warning, err := chooseBuilder(context.Background(), o, state, job)
	var none *buildx.NoBuilderError
	if !errors.As(err, &none) || jb.Kind != "" || warning != "" {
		t.Fatalf("all down: %+v %q %v", jb, warning, err)
	}

	cfg.BuildersOptional = true
	sel, jb, warning, err := chooseBuilder(context.Background(), o, state, job)
	if err != nil || jb.Kind != "" || !strings.Contains(warning, "no builder available: remote: tcp://10.9.9.9:1234: probe failed") ||
		!strings.Contains(warning, "builders_optional is set") {
		t.Fatalf("optional: %+v %q %v", jb, warning, err)
	}
	lines := strings.Join(builderLines(sel, warning), "\n")
	if !strings.HasPrefix(lines, "warning: no builder available") || strings.Contains(lines, "none configured") {
		t.Errorf("log lines:\n%s", lines)
	}
	e := agentenv.New()
	setBuilderEnv(e, sel)
	if _, ok := e.Get(buildx.BuilderVar); ok {
		t.Error("BUILDX_BUILDER exported without a builder")
	}
}
