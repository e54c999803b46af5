package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dockhand-ci/dockhand/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

func manifestStatus(t *testing.T, host, repo, tag string) int {
	t.Helper()
	status, _ := headManifest(t, host, repo, tag)
	return status
}

// headManifest is harness.HeadManifest, failing the test when the registry
// does not answer.
func headManifest(t *testing.T, host, repo, tag string) (int, string) {
	t.Helper()
	status, digest, err := harness.HeadManifest(host, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return status, digest
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
