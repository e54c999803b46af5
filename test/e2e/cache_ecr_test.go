package e2e

import (
	"fmt"
	"slices"
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
	t.Parallel()
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

// TestCacheECRRepositoryOnPowerUser: the instance role the Elastic CI
// Stack's ECRAccessPolicy=poweruser gives (the fake ECR refusing what
// AWS's PowerUser policy does not grant, as IAM does) may not create the
// cache repository: the first job says so once, as a warning that expands
// the setup section, naming ecr:CreateRepository, and its builds run
// uncached (nothing injected) rather than exporting to nowhere; the next
// job on the host says it in one plain line without asking ECR again.
func TestCacheECRRepositoryOnPowerUser(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	ecr, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{awsKey: awsSecret}, Password: "ecr-cache-test-password",
		Allow: map[string][]string{awsKey: ecrapi.StackPolicy("poweruser")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ecr.Close)
	repo := ecrHost + "/build-cache"
	r := cacheRig(t, fmt.Sprintf("[cache]\nrepository = %q\n", repo))
	env := branchEnv("main")
	for k, v := range awsEnv(ecr, t.TempDir()) {
		env[k] = v
	}
	command := buildCommand("FROM "+kit.BaseImage+"\nRUN echo ran-ecr-poweruser\n", kit.Buildkitd.Addr,
		"DOCKHAND_DEBUG=1 docker buildx build --builder kit --progress plain .")

	log := runJob(t, r, command, env)
	warning := "dockhand: warning: cache: the ECR repository " + repo + "/pipeline does not exist and the instance role may not create it (it lacks ecr:CreateRepository): builds run without cache"
	lines := strings.Split(log, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, warning) })
	if i < 0 || i+1 == len(lines) || lines[i+1] != "^^^ +++" || strings.Count(log, "lacks ecr:CreateRepository") != 1 {
		t.Errorf("want one warning naming ecr:CreateRepository, expanding the section:\n%s", log)
	}
	if keys := injectedKeys(log); len(keys) != 0 || strings.Contains(log, "--cache-to") {
		t.Errorf("cache injected into a repository that cannot exist: %q\n%s", keys, log)
	}
	if _, ok := ecr.Repository("123456789012", "us-east-1", "build-cache/pipeline"); ok {
		t.Errorf("the repository was created against the policy")
	}

	log = runJob(t, r, command, env)
	if n := ecr.Calls(ecrapi.OpCreateRepository); n != 1 {
		t.Errorf("CreateRepository calls after two jobs = %d, want 1 (the denial remembered)", n)
	}
	if strings.Contains(log, "dockhand: warning: cache") || !strings.Contains(log, "dockhand: cache: the ECR repository "+repo+"/pipeline does not exist") ||
		!strings.Contains(log, "known to this host for") {
		t.Errorf("the second job: want one plain line from what the host knows:\n%s", log)
	}
}
