package bootstrap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/env"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// A dead job's dir the agent user cannot remove (something of root's in it)
// costs disk, not the next jobs: the job runs, and its log says what was
// left. Before, every later job on the host failed on the sweep.
func TestUnremovableDeadJobDirOnlyWarns(t *testing.T) {
	if !harness.IsUserRun() {
		needRoot(t, "running as the agent user needs root")
		u := harness.MustStackUser(t)
		root := u.TempDir(t)
		state := filepath.Join(root, "state")
		os.Mkdir(state, 0o700)
		dead, err := CreateJobDir(context.Background(), state, "dead")
		if err != nil {
			t.Fatal(err)
		}
		dead.lock.Close()
		bin := filepath.Join(root, "bin")
		os.Mkdir(bin, 0o755)
		// The real bootstrap's stand-in: it checks it got a job dir.
		os.WriteFile(filepath.Join(bin, "buildkite-agent"), []byte("#!/bin/sh\ntest -d \"$DOCKHAND_JOB_DIR\" || exit 3\nexit 7\n"), 0o755)
		if err := u.Chown(state, bin); err != nil {
			t.Fatal(err)
		}
		roots := filepath.Join(dead.Path, "roots")
		os.Mkdir(roots, 0o755)
		os.WriteFile(filepath.Join(roots, "file"), nil, 0o644)
		u.RunTest(t, t.Name(), "DOCKHAND_TEST_STATE="+state, "DOCKHAND_TEST_BIN="+bin, "DOCKHAND_TEST_TMP="+root)
		if _, err := os.Stat(dead.Path); err != nil {
			t.Errorf("the dead job's dir went after all: %v", err)
		}
		return
	}
	state, bin := os.Getenv("DOCKHAND_TEST_STATE"), os.Getenv("DOCKHAND_TEST_BIN")
	cfg := env.Default("")
	cfg.StateDir, cfg.Builders, cfg.Cache.Mode = state, nil, env.CacheOff
	var log strings.Builder
	exit, err := Run(Options{Env: agentenv.FromMap(map[string]string{"BUILDKITE_JOB_ID": "j1", "PATH": bin + ":/usr/bin:/bin", "TMPDIR": os.Getenv("DOCKHAND_TEST_TMP")}),
		Config: cfg, Self: filepath.Join(bin, "dockhand"), Log: &log, UID: os.Getuid()})
	if err != nil || exit.Code != 7 {
		t.Fatalf("Run = %+v, %v; want the job's own exit 7 (log:\n%s)", exit, err, log.String())
	}
	if !strings.Contains(log.String(), "dockhand: warning: dead jobs' dirs left in place: removing "+state) {
		t.Errorf("the log does not say what the sweep left:\n%s", log.String())
	}
}
