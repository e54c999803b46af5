package buildx

import (
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
