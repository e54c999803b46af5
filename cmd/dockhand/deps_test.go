package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestJobPathBinaryStaysLight: `dockhand` runs as the job's shell, buildx
// shim and credential helper, several times per build, so it must start in
// about a millisecond. The libraries below cost milliseconds of package
// initialisation; they belong in dockhand-cloud.
func TestJobPathBinaryStaysLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, heavy := range []string{
		"google.golang.org/grpc",
		"github.com/aws/aws-sdk-go-v2/",
		"github.com/moby/buildkit/",
		"github.com/distribution/reference",
		"github.com/itchyny/gojq",
		"github.com/dockhand-ci/dockhand/cachedimage/jqeval",
		"github.com/dockhand-ci/dockhand/cachedimage/build",
		"github.com/dockhand-ci/dockhand/awsconfig",
	} {
		for _, pkg := range strings.Fields(string(out)) {
			if strings.HasPrefix(pkg, heavy) || pkg == strings.TrimSuffix(heavy, "/") {
				t.Errorf("dockhand links %s (via %s); move that code to dockhand-cloud", heavy, pkg)
				break
			}
		}
	}
}
