package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Dockhand returns the dockhand binary under test: $DOCKHAND_BIN (set by
// `make test` to bin/dockhand), else one built once per test process into a
// temporary directory that CleanupDockhand removes.
func Dockhand() (string, error) {
	if p := os.Getenv("DOCKHAND_BIN"); p != "" {
		return p, nil
	}
	buildOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "dockhand-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "dockhand")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/dockhand")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building dockhand: %w\n%s", err, out)
		}
	})
	return builtBin, buildErr
}

// CleanupDockhand removes a binary Dockhand built; call it from TestMain.
func CleanupDockhand() {
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
}
