package buildkit

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// An agent user the engine's socket refuses (not in its group) gets the
// cause and the fix, not a bare "permission denied" or "no socket": run as
// the stack's user, uid 2000, as root would be let in.
func TestDockerSocketDeniedSaysWhy(t *testing.T) {
	if !harness.IsUserRun() {
		harness.NeedRoot(t, "running as the agent user needs root")
		u := harness.MustStackUser(t)
		dir := u.TempDir(t)
		sock := filepath.Join(dir, "docker.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		os.Chmod(sock, 0o660) // root's, group root: the user is not in it
		hidden := filepath.Join(dir, "hidden")
		os.Mkdir(hidden, 0o700)
		os.Chown(hidden, 0, 0)
		u.RunTest(t, t.Name(), "DOCKHAND_TEST_SOCKET="+sock, "DOCKHAND_TEST_HIDDEN="+filepath.Join(hidden, "docker.sock"))
		return
	}
	sock := os.Getenv("DOCKHAND_TEST_SOCKET")
	r := docker(t.Context(), cloud.ProbeTarget{Kind: cloud.ProbeDocker, Endpoint: "unix://" + sock})
	want := "may not use the socket " + sock + " (mode 0660, group root; this process is not in that group): add the agent user to group root"
	if r.OK || !strings.Contains(r.Error, want) {
		t.Errorf("probe = %+v, want an error saying %q", r, want)
	}
	hidden := os.Getenv("DOCKHAND_TEST_HIDDEN")
	r = docker(t.Context(), cloud.ProbeTarget{Kind: cloud.ProbeDocker, Endpoint: "unix://" + hidden})
	if want := "may not reach the socket " + hidden; r.OK || !strings.Contains(r.Error, want) {
		t.Errorf("probe = %+v, want an error saying %q", r, want)
	}
}
