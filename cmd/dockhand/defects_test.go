package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Regression tests for the defects of issue 12 that show in the dockhand
// binary, each named for its number there.

// buildDockhand returns a dockhand binary in dir: a copy of DOCKHAND_BIN
// (what `make test` built), else one built from this package.
func buildDockhand(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "dockhand")
	if built := os.Getenv("DOCKHAND_BIN"); built != "" {
		data, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o700); err != nil {
			t.Fatal(err)
		}
		return bin
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// DOCKHAND_REAL_BUILDX pointing at dockhand (a link to it, or a copy) ends
// in a bounded time with a line naming the variable, never an exec loop.
func TestDefect15_RealBuildxPointingAtDockhand(t *testing.T) {
	dir := t.TempDir()
	bin := buildDockhand(t, dir)
	plugins := filepath.Join(dir, "cli-plugins")
	os.Mkdir(plugins, 0o700)
	shim := filepath.Join(plugins, "docker-buildx")
	if err := os.Symlink(bin, shim); err != nil {
		t.Fatal(err)
	}
	copyDir := filepath.Join(dir, "copy")
	os.Mkdir(copyDir, 0o700)
	data, _ := os.ReadFile(bin)
	cp := filepath.Join(copyDir, "docker-buildx")
	os.WriteFile(cp, data, 0o700)
	for name, target := range map[string]string{"the shim itself": shim, "dockhand": bin, "a copy of dockhand": cp} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, shim, "buildx", "version")
			// No HOME: the search for the real plugin is the system dirs only.
			cmd.Env = []string{"PATH=/usr/bin:/bin", "DOCKHAND_REAL_BUILDX=" + target, "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker"}
			out, _ := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("still running after 10s: an exec loop (output %q)", out)
			}
			if !strings.Contains(string(out), "DOCKHAND_REAL_BUILDX") {
				t.Errorf("output %q does not name DOCKHAND_REAL_BUILDX", out)
			}
		})
	}
}
