package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

func TestJobDirIsPrivateAndRemoved(t *testing.T) {
	state := t.TempDir()
	j, err := CreateJobDir(t.Context(), state, "0190f000-0000-7000-8000-000000000001")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(j.Path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("job dir mode = %o, want 700", fi.Mode().Perm())
	}
	if filepath.Dir(j.Path) != filepath.Join(state, "jobs") {
		t.Errorf("job dir %s not under %s/jobs", j.Path, state)
	}
	os.MkdirAll(filepath.Join(j.Path, "docker", "ro"), 0o700)
	os.Chmod(filepath.Join(j.Path, "docker"), 0o500) // a job that locked itself out
	if err := j.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(j.Path); !os.IsNotExist(err) {
		t.Errorf("job dir still there after Remove: %v", err)
	}
}

func TestSweepRemovesOnlyDeadJobs(t *testing.T) {
	state := t.TempDir()
	live, err := CreateJobDir(t.Context(), state, "live")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	dead, err := CreateJobDir(t.Context(), state, "dead")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead.Path, "left-behind"), []byte("x"), 0o600)
	dead.lock.Close() // the job died: the kernel dropped its lock
	removed, err := Sweep(t.Context(), state)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{dead.Path}) {
		t.Errorf("Sweep removed %q, want only %q", removed, dead.Path)
	}
	if _, err := os.Stat(live.Path); err != nil {
		t.Errorf("live job dir was touched: %v", err)
	}
	if _, err := os.Stat(dead.Path); !os.IsNotExist(err) {
		t.Errorf("dead job dir still there: %v", err)
	}
	again, err := Sweep(t.Context(), state)
	if err != nil || len(again) != 0 {
		t.Errorf("second Sweep = %q, %v; want nothing", again, err)
	}
}

func TestSweepWithoutStateDir(t *testing.T) {
	removed, err := Sweep(t.Context(), filepath.Join(t.TempDir(), "none"))
	if err != nil || removed != nil {
		t.Errorf("Sweep of a missing state dir = %q, %v", removed, err)
	}
}

func TestStateDirFallsBackWhenNotWritable(t *testing.T) {
	tmp := t.TempDir()
	blocker := filepath.Join(tmp, "file")
	os.WriteFile(blocker, nil, 0o600)
	dir, fellBack, err := StateDir(filepath.Join(blocker, "state"), tmp, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	if fellBack == nil {
		t.Error("no fallback reason reported")
	}
	want := filepath.Join(tmp, "dockhand-"+itoa(os.Getuid()))
	if dir != want {
		t.Errorf("StateDir = %s, want %s", dir, want)
	}
	good := filepath.Join(tmp, "good")
	dir, fellBack, err = StateDir(good, tmp, os.Getuid())
	if err != nil || dir != good || fellBack != nil {
		t.Errorf("StateDir(%s) = %s, %v, %v", good, dir, fellBack, err)
	}
}

func TestStateDirRefusesSharedFallback(t *testing.T) {
	tmp := t.TempDir()
	shared := filepath.Join(tmp, "dockhand-"+itoa(os.Getuid()))
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, 0o777)
	if _, _, err := StateDir("", tmp, os.Getuid()); err == nil {
		t.Error("a world-writable fallback state dir was accepted")
	}
}

func itoa(i int) string { return fmt.Sprint(i) }

// As the stack runs it: the agent user (uid 2000, not root, so file modes
// hold) owns the state dir, as install-dockhand.sh makes it. A job's own
// cleanup and the next job's sweep must both remove job dirs from
// STATE/jobs, which that user may enter but not list (0300): root, which
// ignores the mode, hid that they could not.
func TestJobDirsAsTheAgentUser(t *testing.T) {
	if !harness.IsUserRun() {
		harness.NeedRoot(t, "running as the agent user needs root")
		u := harness.MustStackUser(t)
		state := filepath.Join(u.TempDir(t), "state")
		if err := os.Mkdir(state, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := u.Chown(state); err != nil {
			t.Fatal(err)
		}
		u.RunTest(t, t.Name(), "DOCKHAND_TEST_STATE="+state)
		return
	}
	if os.Getuid() == 0 {
		t.Fatal("the user's run runs as root")
	}
	state := os.Getenv("DOCKHAND_TEST_STATE")
	ctx := t.Context()
	first, err := CreateJobDir(ctx, state, "first")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(first.Path, "docker", "buildx"), 0o700)
	if err := first.Remove(); err != nil {
		t.Errorf("the job's own cleanup: %v", err)
	}
	if _, err := os.Lstat(first.Path); !os.IsNotExist(err) {
		t.Errorf("job dir still there after Remove: %v", err)
	}
	dead, err := CreateJobDir(ctx, state, "dead")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead.Path, "left-behind"), []byte("x"), 0o600)
	os.Mkdir(filepath.Join(dead.Path, "locked-out"), 0o700)
	os.Chmod(filepath.Join(dead.Path, "locked-out"), 0)
	dead.lock.Close() // the job died: the kernel dropped its lock
	removed, err := Sweep(ctx, state)
	if err != nil || !slices.Equal(removed, []string{dead.Path}) {
		t.Errorf("the next job's Sweep = %q, %v; want %q removed", removed, err, dead.Path)
	}
	if _, err := os.ReadDir(filepath.Join(state, "jobs")); err == nil {
		t.Error("the agent user can list STATE/jobs after the sweep")
	}
}
