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

// Dockhand returns the dockhand binary under test, with dockhand-cloud beside
// it: $DOCKHAND_BIN (set by `make test` to bin/dockhand), else both built once
// per test process into a temporary directory that CleanupDockhand removes.
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
		// The stack's agent user runs it too.
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		// Both binaries, side by side as they are installed.
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/dockhand", "./cmd/dockhand-cloud")
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
