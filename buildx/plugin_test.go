package buildx

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func exe(t *testing.T, path string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestPluginDirsOrder(t *testing.T) {
	got := PluginDirs([]string{"/opt/extra"}, "/home/agent/.docker")
	want := append([]string{"/opt/extra", "/home/agent/.docker/cli-plugins"}, SystemPluginDirs...)
	if !slices.Equal(got, want) {
		t.Errorf("PluginDirs = %q, want %q", got, want)
	}
	if got := PluginDirs(nil, ""); !slices.Equal(got, SystemPluginDirs) {
		t.Errorf("PluginDirs without a user dir = %q", got)
	}
}

func TestFindRealSkipsTheShim(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "bin", "dockhand")
	exe(t, self)
	jobPlugins := filepath.Join(dir, "job", "cli-plugins")
	os.MkdirAll(jobPlugins, 0o700)
	os.Symlink(self, filepath.Join(jobPlugins, PluginName)) // the shim itself
	notExec := filepath.Join(dir, "noexec")
	os.MkdirAll(notExec, 0o755)
	os.WriteFile(filepath.Join(notExec, PluginName), nil, 0o644)
	real := filepath.Join(dir, "system", PluginName)
	exe(t, real)
	dirs := []string{filepath.Join(dir, "missing"), jobPlugins, notExec, filepath.Dir(real)}
	if got := FindReal(dirs, self); got != real {
		t.Errorf("FindReal = %q, want %q", got, real)
	}
	if got := FindReal(dirs[:3], self); got != "" {
		t.Errorf("FindReal without a real plugin = %q, want none", got)
	}
}

func TestShimTarget(t *testing.T) {
	dir := t.TempDir()
	recorded := filepath.Join(dir, "recorded", PluginName)
	home := filepath.Join(dir, "home")
	exe(t, filepath.Join(home, ".docker", "cli-plugins", PluginName))
	env := map[string]string{RealPluginVar: recorded, "HOME": home}
	lookup := func(k string) string { return env[k] }
	if got, err := ShimTarget(lookup, "/usr/local/bin/dockhand", nil); err != nil || got != recorded {
		t.Errorf("ShimTarget with a recorded plugin = %q, %v", got, err)
	}
	delete(env, RealPluginVar)
	want := filepath.Join(home, ".docker", "cli-plugins", PluginName)
	if got, err := ShimTarget(lookup, "/usr/local/bin/dockhand", nil); err != nil || got != want {
		t.Errorf("ShimTarget from HOME = %q, %v; want %q", got, err, want)
	}
	// A recorded plugin that is dockhand itself is passed over, with one
	// warning in the job log.
	self := filepath.Join(dir, "bin", "dockhand")
	exe(t, self)
	env[RealPluginVar] = self
	var log bytes.Buffer
	if got, err := ShimTarget(lookup, self, &log); err != nil || got != want {
		t.Errorf("ShimTarget with itself recorded = %q, %v; want %q", got, err, want)
	}
	if w := "dockhand: warning: ignoring " + RealPluginVar + "=" + self + ": it is dockhand's shim, not buildx; looking for the real plugin\n"; log.String() != w {
		t.Errorf("log = %q, want %q", log.String(), w)
	}
	delete(env, RealPluginVar)
	env["HOME"] = filepath.Join(dir, "nobody")
	if _, err := ShimTarget(lookup, "/usr/local/bin/dockhand", nil); err == nil {
		// the machine may have a system plugin; only a miss everywhere must error
		if FindReal(SystemPluginDirs, "") == "" {
			t.Error("ShimTarget found a plugin where there is none")
		}
	}
}
