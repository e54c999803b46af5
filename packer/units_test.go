package packer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

// systemUnitDir is the host's directory of packaged units (sysinit.target and
// friends), which units with default dependencies need to load.
func systemUnitDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			return d
		}
	}
	t.Fatal("no systemd unit directory with sysinit.target on this machine (install Debian's systemd)")
	return ""
}

// verifyUnits copies an installed root, adds the host's packaged units and
// runs `systemd-analyze verify --root` on units there. Anything it prints is
// a problem (unknown keys are only warnings to systemd).
func verifyUnits(t *testing.T, root string, prepare func(scratch string), units ...string) (string, int) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is not installed: it comes with Debian's systemd package")
	}
	scratch := t.TempDir()
	mustRun(t, nil, "cp", "-a", root+"/.", scratch)
	os.MkdirAll(filepath.Join(scratch, "usr/lib/systemd"), 0o755)
	mustRun(t, nil, "cp", "-a", systemUnitDir(t), filepath.Join(scratch, "usr/lib/systemd/system"))
	if prepare != nil {
		prepare(scratch)
	}
	return run(t, nil, analyze, append([]string{"verify", "--man=no", "--root=" + scratch}, units...)...)
}

// TestUnitsVerify: systemd accepts every unit file and drop-in the install
// scripts put down, as installed (ExecStart= paths included).
func TestUnitsVerify(t *testing.T) {
	root := harness.MustRepoRoot(t)
	agentRoot := filepath.Join(t.TempDir(), "root")
	mustRun(t, nil, "bash", filepath.Join(root, "packer/scripts/install-dockhand.sh"),
		"--destdir", agentRoot, "--from", dockhandDir(t), "--user", "0")
	withStackUnit := func(extra string) func(string) {
		return func(scratch string) {
			writeFile(t, filepath.Join(scratch, "etc/systemd/system/buildkite-agent.service"),
				readFile(t, filepath.Join(root, "packer/testdata/buildkite-agent.service")), 0o644)
			writeFile(t, filepath.Join(scratch, "usr/bin/buildkite-agent"), "#!/bin/sh\n", 0o755)
			if extra != "" {
				dropIn := filepath.Join(scratch, "etc/systemd/system/buildkite-agent.service.d/50-dockhand.conf")
				writeFile(t, dropIn, readFile(t, dropIn)+extra, 0o644)
			}
		}
	}
	if out, code := verifyUnits(t, agentRoot, withStackUnit(""), "buildkite-agent.service"); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify buildkite-agent.service with dockhand's drop-in: exit %d\n%s", code, out)
	}
	// The check has teeth: a typo in the drop-in is reported.
	if out, _ := verifyUnits(t, agentRoot, withStackUnit("Enviroment=X=1\n"), "buildkite-agent.service"); !strings.Contains(out, "Enviroment") {
		t.Errorf("a misspelt key in the drop-in went unreported:\n%s", out)
	}

	builderRoot := filepath.Join(t.TempDir(), "root")
	mustRun(t, nil, "bash", filepath.Join(root, "packer/scripts/install-buildkitd.sh"), "--destdir", builderRoot,
		"--buildkitd", tool(t, "buildkitd"), "--buildctl", tool(t, "buildctl"), "--runc", tool(t, "runc"))
	units := []string{"buildkitd.service", "buildkitd-volume.service", "buildkitd-tls.service", "buildkitd-lifecycle.service"}
	if out, code := verifyUnits(t, builderRoot, nil, units...); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify %v: exit %d\n%s", units, code, out)
	}
	// ...and an ExecStart= that is not installed fails it.
	missing := func(scratch string) { os.Remove(filepath.Join(scratch, "usr/local/libexec/dockhand/buildkitd-start")) }
	if out, code := verifyUnits(t, builderRoot, missing, "buildkitd.service"); code == 0 || !strings.Contains(out, "buildkitd-start") {
		t.Errorf("verify passed with buildkitd-start missing: exit %d\n%s", code, out)
	}
}
