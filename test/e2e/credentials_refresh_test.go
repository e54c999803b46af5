package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// TestCredentialsECRRefreshedBeforeTheJobsFirstGet: the host's AWS
// credentials are the agent's (as an instance's are); a job's get caches an
// ECR token; once that token is near the end of its life, the next job's
// bootstrap refreshes it beside the job, and the job's first get is served
// from the cache: the job itself makes no API call. A pipeline that brings
// its own AWS keys never refreshes the host's token; with
// registry.refresh_tokens = false the job's first get is cold again. The
// same step on the plain stack (the agent's bootstrap, the upstream ECR
// helper) gets the same secret as the refreshed job's get.
func TestCredentialsECRRefreshedBeforeTheJobsFirstGet(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-refreshed-by-the-bootstrap"
	const pipelineKey, pipelineSecret = "AKIADOCKHANDPIPELINE", "pipeline-secret-access-key"
	harness.NoSecretInCmdlines(t, password, awsSecret, pipelineSecret)
	fake, err := ecrapi.Start(ecrapi.Options{Keys: map[string]string{awsKey: awsSecret, pipelineKey: pipelineSecret}, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	r := newRig(t)
	home := r.tempDir()
	r.agentEnv = []string{"HOME=" + home}
	for k, v := range awsEnv(fake, home) {
		r.agentEnv = append(r.agentEnv, k+"="+v)
	}
	cacheFile := filepath.Join(r.state, registry.TokenCacheDirName, "ecr.json")
	// The step's get prints its answer's secret as a digest (never the
	// secret itself), so the plain stack's answer can be compared.
	getStep := func(helper string) string {
		return fmt.Sprintf(`printf %%s %s | %s get | grep -o '"Secret":"[^"]*"' | sha256sum | sed 's/^/secret-digest=/; s/ .*//'`, ecrHost, helper)
	}
	command := fmt.Sprintf(`set -eo pipefail
%s
echo "job-ecr-calls=$(cat "$DOCKHAND_JOB_DIR/%s" 2>/dev/null | wc -l)"`, getStep("docker-credential-dockhand"), registry.ECRCallsFile)
	run := func(env map[string]string) string {
		t.Helper()
		id, agent := r.start(command, env)
		f, log := r.finish(id, agent)
		if f.ExitStatus != "0" {
			t.Fatalf("exit_status = %q\n%s", f.ExitStatus, log)
		}
		if strings.Contains(log, password) {
			t.Fatalf("the token appears in the job log")
		}
		return log
	}
	calls := func() int { return fake.Calls(ecrapi.OpGetAuthorizationToken) }
	debug := map[string]string{"DOCKHAND_DEBUG": "1"}
	fromAPI := "credentials for " + ecrHost + " from ecr (ECR API)"
	fromCache := "credentials for " + ecrHost + " from ecr (cached token)"

	// A cold host: the job's get fetches the token.
	log := run(debug)
	if !strings.Contains(log, fromAPI) || !strings.Contains(log, "job-ecr-calls=1") || calls() != 1 {
		t.Fatalf("first job: %d calls, log:\n%s", calls(), log)
	}

	// Ten minutes left: the bootstrap refreshes it; the job's get waits
	// for nothing of its own.
	nearExpiry(t, cacheFile, false)
	log = run(debug)
	if !strings.Contains(log, fromCache) || !strings.Contains(log, "job-ecr-calls=0") {
		t.Errorf("the job's first get after a refresh was not served from the cache:\n%s", log)
	}
	refreshedGet := lineWith(log, "secret-digest=")
	if !strings.Contains(log, "dockhand: debug: ECR token refresh of "+ecrHost+": refreshed in ") {
		t.Errorf("no debug line about the refresh:\n%s", log)
	}
	if n := calls(); n != 2 || fake.Log()[1].AccessKeyID != awsKey {
		t.Errorf("GetAuthorizationToken calls = %d (%+v), want 2, the refresh's with the host's key", n, fake.Log())
	}

	// A pipeline with AWS keys of its own: its bootstrap has another
	// identity, and leaves the host's token alone.
	nearExpiry(t, cacheFile, false)
	id, agent := r.start("true", map[string]string{"AWS_ACCESS_KEY_ID": pipelineKey, "AWS_SECRET_ACCESS_KEY": pipelineSecret, "DOCKHAND_DEBUG": "1"})
	if f, log := r.finish(id, agent); f.ExitStatus != "0" || strings.Contains(log, "token refresh") {
		t.Fatalf("the pipeline's job: %q\n%s", f.ExitStatus, log)
	}
	if n := calls(); n != 2 {
		t.Errorf("a pipeline's own AWS keys refreshed the host's token: %d calls, %+v", n, fake.Log())
	}

	// Refresh off: the job's first get is cold.
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n[registry]\nrefresh_tokens = false\n", r.state))
	log = run(debug)
	if !strings.Contains(log, fromAPI) || !strings.Contains(log, "job-ecr-calls=1") || calls() != 3 {
		t.Errorf("with refresh_tokens = false: %d calls, log:\n%s", calls(), log)
	}

	// The same step on the plain stack (the agent's own bootstrap, the
	// upstream ECR helper, the same AWS identity) gets the same answer as
	// the job whose token the bootstrap refreshed.
	plainEnv := awsEnv(fake, home)
	plainEnv["AWS_ECR_CACHE_DIR"] = r.tempDir()
	id, agent = r.startPlain("set -eo pipefail\n"+getStep("docker-credential-ecr-login"), plainEnv)
	f, plainLog := r.finish(id, agent)
	plainGet := lineWith(plainLog, "secret-digest=")
	if f.ExitStatus != "0" || plainGet == "" || plainGet != refreshedGet || strings.Contains(plainLog, password) {
		t.Errorf("plain stack: exit %q, %q; dockhand's refreshed get: %q\n%s", f.ExitStatus, plainGet, refreshedGet, plainLog)
	}
}

// lineWith is the first line of log that starts with prefix, trimmed (""
// if none): a line the step printed, not the echo of its command.
func lineWith(log, prefix string) string {
	for _, l := range strings.Split(log, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
