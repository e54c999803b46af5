package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// A dead job's dir the agent user cannot remove (something of root's in it)
// costs disk, not the next jobs: the job runs, and its log says what was
// left. Before, every later job on the host failed on the sweep.
func TestUnremovableDeadJobDirOnlyWarns(t *testing.T) {
	if !harness.IsUserRun() {
		harness.NeedRoot(t, "running as the agent user needs root")
		u := harness.MustStackUser(t)
		root := u.TempDir(t)
		state := filepath.Join(root, "state")
		os.Mkdir(state, 0o700)
		dead, err := CreateJobDir(t.Context(), state, "dead")
		if err != nil {
			t.Fatal(err)
		}
		dead.lock.Close()
		bin := standIn(t, root)
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
	log := runAsUser(t)
	state := os.Getenv("DOCKHAND_TEST_STATE")
	if !strings.Contains(log, "dockhand: warning: dead jobs' dirs left in place: removing "+state) {
		t.Errorf("the log does not say what the sweep left:\n%s", log)
	}
}

// standIn makes dir/bin with the real bootstrap's stand-in: it checks it
// got a job dir, and exits 7.
func standIn(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "buildkite-agent"), []byte("#!/bin/sh\ntest -d \"$DOCKHAND_JOB_DIR\" || exit 3\nexit 7\n"), 0o755)
	return bin
}

// runAsUser is the user's run of a test: the job's bootstrap with the
// state dir, the stand-in and TMPDIR its parent passed; it fails t unless
// the job ran to the stand-in's exit 7, and returns the job log.
func runAsUser(t *testing.T) string {
	t.Helper()
	if os.Getuid() == 0 {
		t.Fatal("the user's run runs as root")
	}
	state, bin := os.Getenv("DOCKHAND_TEST_STATE"), os.Getenv("DOCKHAND_TEST_BIN")
	cfg := config.Default("")
	cfg.StateDir, cfg.Builders, cfg.Cache.Mode = state, nil, config.CacheOff
	var log strings.Builder
	exit, err := Run(Options{Env: agentenv.FromMap(map[string]string{"BUILDKITE_JOB_ID": "j1", "PATH": bin + ":/usr/bin:/bin", "TMPDIR": os.Getenv("DOCKHAND_TEST_TMP")}),
		Config: cfg, Self: filepath.Join(bin, "dockhand"), Log: &log, UID: os.Getuid()})
	if err != nil || exit.Code != 7 {
		t.Fatalf("Run = %+v, %v; want the job's own exit 7 (log:\n%s)", exit, err, log.String())
	}
	return log.String()
}

// A state dir of another user's, or one where root left STATE/jobs (a run
// as root before the agent got its own user): the job runs in the private
// dir under TMPDIR, and its log names the cause and the fix.
func TestStateDirOfAnotherUserFallsBack(t *testing.T) {
	cases := map[string]func(state string){
		"root's":            func(state string) { os.Chown(state, 0, 0) },
		"root's jobs dir":   func(state string) { os.Chown(filepath.Join(state, "jobs"), 0, 0) },
		"root's jobs .lock": func(state string) { os.Chown(filepath.Join(state, "jobs", ".lock"), 0, 0) },
	}
	if !harness.IsUserRun() {
		harness.NeedRoot(t, "running as the agent user needs root")
		u := harness.MustStackUser(t)
		for name, spoil := range cases {
			t.Run(name, func(t *testing.T) {
				root := u.TempDir(t)
				state := filepath.Join(root, "state")
				os.Mkdir(state, 0o700)
				j, err := CreateJobDir(t.Context(), state, "earlier")
				if err != nil {
					t.Fatal(err)
				}
				j.Remove()
				bin := standIn(t, root)
				if err := u.Chown(state, bin); err != nil {
					t.Fatal(err)
				}
				spoil(state)
				u.RunTest(t, "TestStateDirOfAnotherUserFallsBack", "DOCKHAND_TEST_STATE="+state, "DOCKHAND_TEST_BIN="+bin, "DOCKHAND_TEST_TMP="+root)
			})
		}
		return
	}
	log := runAsUser(t)
	state, tmp := os.Getenv("DOCKHAND_TEST_STATE"), os.Getenv("DOCKHAND_TEST_TMP")
	fix := fmt.Sprintf("fix: chown -R %d %s, as install-dockhand.sh --user does)", os.Getuid(), state)
	using := fmt.Sprintf("; using %s/dockhand-%d\n", tmp, os.Getuid())
	if !strings.Contains(log, "dockhand: warning: state dir "+state+" not usable (") || !strings.Contains(log, fix) || !strings.Contains(log, using) {
		t.Errorf("the log does not say why the state dir was passed over, how to fix it and what was used (%q, %q):\n%s", fix, using, log)
	}
}
