package bootstrap

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Regression tests for the defects of issue 12 that live in the bootstrap,
// each named for its number there.

// A job whose id starts with "." dies: its dir (credentials.json and all)
// is swept by the next job like any other. A dot-named dir an older
// dockhand left behind is swept too.
func TestDefect14_DotJobIDSwept(t *testing.T) {
	state := t.TempDir()
	for _, id := range []string{".hidden", "..", "."} {
		dead, err := CreateJobDir(state, id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(dead.Path), ".") {
			t.Errorf("job %q got the hidden dir %s", id, dead.Path)
		}
		os.WriteFile(filepath.Join(dead.Path, "credentials.json"), []byte("{}"), 0o600)
		dead.lock.Close() // the job died
	}
	legacy := filepath.Join(state, "jobs", ".old-123")
	os.Mkdir(legacy, 0o700)
	os.WriteFile(filepath.Join(legacy, "credentials.json"), []byte("{}"), 0o600)
	removed, err := Sweep(state)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, legacy) || len(removed) != 4 {
		t.Errorf("Sweep removed %q, want the 3 dead jobs and %s", removed, legacy)
	}
	// Go's "*" matches names starting with "." too.
	if left, _ := filepath.Glob(filepath.Join(state, "jobs", "*", "credentials.json")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}
