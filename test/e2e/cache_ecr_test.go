package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestCacheECRRepository: with the registry backend on ECR, the bootstrap
// creates the pipeline's cache repository with a lifecycle policy (through
// dockhand-cloud and the real AWS SDK, against the fake ECR API), once per
// host. The build's refs carry image-manifest=true,oci-mediatypes=true; the
// registry itself is unreachable here, and the build still passes.
func TestCacheECRRepository(t *testing.T) {
	kit := harness.Start(t, harness.Options{})
	ecr := startECR(t, "ecr-cache-test-password", nil)
	repo := ecrHost + "/build-cache"
	r := cacheRig(t, fmt.Sprintf("[cache]\nrepository = %q\nmax_age_days = 9\n", repo))
	env := branchEnv("main")
	for k, v := range awsEnv(ecr, r.tempDir()) {
		env[k] = v
	}
	command := buildCommand("FROM "+kit.BaseImage+"\nRUN echo ran-ecr\n", kit.Buildkitd.Addr,
		"DOCKHAND_DEBUG=1 docker buildx build --builder kit --progress plain .")

	log := runJob(t, r, command, env)
	if !strings.Contains(log, "dockhand: cache: created the ECR repository "+repo+"/pipeline, expiring cache not written for 9 days") {
		t.Errorf("the job log does not say the repository was created:\n%s", log)
	}
	got, ok := ecr.Repository("123456789012", "us-east-1", "build-cache/pipeline")
	if !ok {
		t.Fatalf("no repository build-cache/pipeline in the fake ECR: %+v", ecr.Log())
	}
	if !strings.Contains(got.LifecyclePolicy, `"countNumber":9`) {
		t.Errorf("lifecycle policy %s, want 9 days", got.LifecyclePolicy)
	}
	// The registry does not resolve here: the export fails, is ignored
	// (ignore-error=true), and the job still passes.
	if !strings.Contains(log, "ERROR: error writing layer blob") {
		t.Errorf("no failed cache export in the log (the test lost its point):\n%s", log)
	}
	if keys := injectedKeys(log); len(keys) != 1 {
		t.Errorf("injections %q, want one\n%s", keys, log)
	}
	if strings.Contains(log, ecr.Token()) || strings.Contains(log, awsSecret) {
		t.Errorf("a secret appears in the job log")
	}

	// A second job on the host: the repository is known, no API call.
	log = runJob(t, r, command, env)
	if n := ecr.Calls(ecrapi.OpCreateRepository); n != 1 {
		t.Errorf("CreateRepository calls after two jobs = %d, want 1", n)
	}
	if strings.Contains(log, "dockhand: cache: created") || strings.Contains(log, "warning: cache repository") {
		t.Errorf("the second job touched the repository again:\n%s", log)
	}
}
