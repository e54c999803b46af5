package e2e

import (
	"os"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.CleanupDockhand()
	os.Exit(code)
}

func dockhandBin(t *testing.T) string {
	t.Helper()
	bin, err := harness.Dockhand()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
