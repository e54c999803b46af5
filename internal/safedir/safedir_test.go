package safedir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// The agent user's state dir below a dir it may pass through but not list
// (0711, as home dirs and /var/lib/… often are) is the user's to trust: the
// walk needs search permission only. Run as the stack's user, uid 2000, so
// root's bypass of file modes cannot hide a walk that reads each dir.
func TestCheckThroughDirsTheUserCannotList(t *testing.T) {
	if !harness.IsUserRun() {
		harness.NeedRoot(t, "running as the agent user needs root")
		u := harness.MustStackUser(t)
		passable := filepath.Join(u.TempDir(t), "passable")
		state := filepath.Join(passable, "state")
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := u.Chown(state); err != nil {
			t.Fatal(err)
		}
		os.Chown(filepath.Dir(state), 0, 0)
		os.Chmod(filepath.Dir(state), 0o711)
		u.RunTest(t, t.Name(), "DOCKHAND_TEST_STATE="+state)
		return
	}
	state := os.Getenv("DOCKHAND_TEST_STATE")
	got, err := Check(state, os.Getuid(), true)
	if err != nil || got != state {
		t.Errorf("Check(%s) = %q, %v; want it trusted", state, got, err)
	}
	if _, err := os.ReadDir(filepath.Dir(state)); err == nil {
		t.Errorf("uid %d can list %s: the test checks nothing", os.Getuid(), filepath.Dir(state))
	}
}
