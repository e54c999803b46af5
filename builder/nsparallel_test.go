package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

// TestSelectDoesNotWaitForNamespacePastTheDeadline: an nsc that hangs (and
// leaves a grandchild holding its output) costs the choice probe_timeout
// plus process start, and the reason names the deadline.
func TestSelectDoesNotWaitForNamespacePastTheDeadline(t *testing.T) {
	dir := t.TempDir()
	nsc := filepath.Join(dir, "nsc")
	if err := os.WriteFile(nsc, []byte("#!/bin/sh\nsetsid sleep 5 &\nexec sleep 30\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default("")
	cfg.Builders = []string{config.BuilderNamespace}
	cfg.ProbeTimeout = 300 * time.Millisecond
	cfg.Namespace = config.Namespace{NSC: nsc, Auth: config.AuthCognito, TenantID: "tnt", AWSRegion: "us-east-1", IdentityPool: "p"}
	job := filepath.Join(dir, "state", "jobs", "j")
	if err := os.MkdirAll(filepath.Join(job, "docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sel, err := Select(t.Context(), SetupOptions{Config: cfg, Env: config.FromSlice([]string{"PATH=/usr/bin:/bin"}), StateDir: filepath.Join(dir, "state"),
		JobDir: job, DockerConfig: filepath.Join(job, "docker"), Self: filepath.Join(dir, "dockhand"), DockerSocket: filepath.Join(dir, "none.sock")})
	took := time.Since(start)
	if err == nil || sel.Builder != nil {
		t.Fatalf("Namespace chosen with a hanging nsc: %v", sel.Lines())
	}
	if want := "not ready within 800ms (probe_timeout 300ms): nsc auth exchange-aws-cognito-token: no answer in time"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	if bound := cfg.ProbeTimeout + namespaceGrace + proc.WaitDelay; took > bound+time.Second {
		t.Errorf("the choice took %s, want at most %s (and a load margin)", took, bound)
	}
}
