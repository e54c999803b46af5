package shim

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/internal/joblog"
)

func TestShimTarget(t *testing.T) {
	dir := t.TempDir()
	recorded := filepath.Join(dir, "recorded", buildx.PluginName)
	home := filepath.Join(dir, "home")
	exe(t, filepath.Join(home, ".docker", "cli-plugins", buildx.PluginName))
	env := map[string]string{RealPluginVar: recorded, "HOME": home}
	lookup := func(k string) string { return env[k] }
	if got, err := Target(lookup, "/usr/local/bin/dockhand", nil); err != nil || got != recorded {
		t.Errorf("Target with a recorded plugin = %q, %v", got, err)
	}
	delete(env, RealPluginVar)
	want := filepath.Join(home, ".docker", "cli-plugins", buildx.PluginName)
	if got, err := Target(lookup, "/usr/local/bin/dockhand", nil); err != nil || got != want {
		t.Errorf("Target from HOME = %q, %v; want %q", got, err, want)
	}
	// A recorded plugin that is dockhand itself is passed over, with one
	// warning in the job log.
	self := filepath.Join(dir, "bin", "dockhand")
	exe(t, self)
	env[RealPluginVar] = self
	var log bytes.Buffer
	if got, err := Target(lookup, self, joblog.New(&log)); err != nil || got != want {
		t.Errorf("Target with itself recorded = %q, %v; want %q", got, err, want)
	}
	if w := "dockhand: warning: ignoring " + RealPluginVar + "=" + self + ": it is dockhand's shim, not buildx; looking for the real plugin\n"; log.String() != w {
		t.Errorf("log = %q, want %q", log.String(), w)
	}
	delete(env, RealPluginVar)
	env["HOME"] = filepath.Join(dir, "nobody")
	if _, err := Target(lookup, "/usr/local/bin/dockhand", nil); err == nil {
		// the machine may have a system plugin; only a miss everywhere must error
		if buildx.FindReal(buildx.SystemPluginDirs, "") == "" {
			t.Error("Target found a plugin where there is none")
		}
	}
}

func exe(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}
