package bootstrap

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// The shell is looked up by the job's PATH as internal/proc.LookPath does
// (issue 24.6): an empty or relative entry never resolves it to a file in the
// working directory (the checkout). The old lookup took the empty entry as
// "." and exec'd ./myshell, which here exits the test binary with status 3.
func TestShellIgnoresEmptyAndRelativePathEntries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "myshell"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		path string
		want error // nil: any "not on PATH" error
	}{
		{path: ":/nonexistent"},
		{path: "/nonexistent::"},
		{path: ".:/nonexistent", want: proc.ErrRelative},
		{path: "./", want: proc.ErrRelative},
	} {
		err := Shell(t.Context(), "myshell", []string{"-c", "true"}, agentenv.FromSlice([]string{"PATH=" + tc.path}), io.Discard)
		if err == nil {
			t.Fatalf("PATH=%q: Shell returned no error", tc.path)
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("PATH=%q: err = %v, want %v", tc.path, err, tc.want)
		}
	}
}
