package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/test/agentapi"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// These tests run real jobs (the real agent, `dockhand bootstrap` and
// `dockhand shell`, see job_test.go) whose docker and buildx get every
// registry credential from docker-credential-dockhand.

// How the ECR job is wired, honestly: a real ECR hostname cannot be served
// here, so the kit's registry (distribution, htpasswd user AWS whose
// password is the token the fake ECR API issues) is configured as an alias
// of 123456789012.dkr.ecr.us-east-1.amazonaws.com with registry.ecr_aliases.
// docker asks the helper for 127.0.0.1:PORT; the helper routes it as that
// ECR registry (account 123456789012, us-east-1), finds no token in the
// shared cache, runs `dockhand-cloud ecr-token`, whose real aws-sdk-go-v2
// signs GetAuthorizationToken with the job's AWS keys and sends it to
// AWS_ENDPOINT_URL_ECR, the fake; the token's password is what the registry
// checks on the push.

func TestCredentialsECRPushInAJob(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-pushed-with-in-a-job"
	harness.NoSecretInCmdlines(t, password, awsSecret)
	kit := harness.Start(t, harness.Options{RegistryUser: "AWS", RegistryPassword: password})
	fake := startECR(t, password, nil)
	r := newRig(t)
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n[registry]\necr_aliases = [%q]\n",
		r.state, kit.Registry.Host+"="+ecrHost))
	ref := kit.Registry.Host + "/ecr/app:1"
	command := fmt.Sprintf(`set -e
echo "job-docker-config=$DOCKER_CONFIG"
printf 'FROM %s\nRUN echo pushed-with-an-ecr-token > /f\n' > Dockerfile
docker buildx create --name kit --driver remote %s >/dev/null
docker buildx build --builder kit --progress plain --push -t %s .
printf %%s %s | docker-credential-dockhand get
echo`, kit.BaseImage, kit.Buildkitd.Addr, ref, kit.Registry.Host)
	env := awsEnv(fake, r.tempDir())
	id, agent := r.start(command, env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit_status = %q, want 0\n%s", f.ExitStatus, log)
	}
	if code := manifestStatus(t, kit.Registry.Host, "ecr/app", "1"); code != http.StatusUnauthorized {
		t.Errorf("anonymous HEAD: HTTP %d, want 401 (the registry requires the token)", code)
	}
	if code := authedManifestStatus(t, kit.Registry.Host, "AWS", password, "ecr/app", "1"); code != http.StatusOK {
		t.Errorf("the pushed image: HTTP %d, want 200", code)
	}
	if n := fake.Calls(ecrapi.OpGetAuthorizationToken); n != 1 {
		t.Errorf("GetAuthorizationToken calls = %d, want 1 (the pull, the push and the get share one token)", n)
	}
	if c := fake.Log()[0]; c.AccessKeyID != awsKey || c.RegistryIDs[0] != "123456789012" || c.Region != "us-east-1" {
		t.Errorf("the call = %+v", c)
	}
	if strings.Contains(log, password) {
		t.Errorf("the token's password appears in the job log")
	}
	if !strings.Contains(log, `"Username":"AWS","Secret":"[REDACTED]"`) {
		t.Errorf("the helper's answer is not redacted in the log:\n%s", log)
	}
	fi, err := os.Stat(filepath.Join(r.state, registry.TokenCacheDirName, "ecr.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the shared token cache: %v, %v", err, fi)
	}
	holding := filesHolding(t, password, testRoot(t), kit.Dir)
	if len(holding) != 1 || holding[0] != filepath.Join(r.state, registry.TokenCacheDirName, "ecr.json") {
		t.Errorf("files holding the token: %q, want only the 0600 token cache", holding)
	}
}

func authedManifestStatus(t *testing.T, host, user, password, repo, tag string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "+
		"application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCredentialsDockerLoginStaysInItsJob: a job logs in, pushes and logs
// out; the next job on the host cannot push there; no file keeps the
// password; no command line ever held it.
func TestCredentialsDockerLoginStaysInItsJob(t *testing.T) {
	t.Parallel()
	const password = "docker-login-password-of-job-one"
	harness.NoSecretInCmdlines(t, password)
	kit := harness.Start(t, harness.Options{RegistryUser: "ci", RegistryPassword: password})
	r := newRig(t)
	build := func(tag string) string {
		return fmt.Sprintf(`printf 'FROM %s\nRUN echo %s > /f\n' > Dockerfile
docker buildx create --name kit --driver remote %s >/dev/null
docker buildx build --builder kit --progress plain --push -t %s/iso/app:%s .`, kit.BaseImage, tag, kit.Buildkitd.Addr, kit.Registry.Host, tag)
	}
	first := fmt.Sprintf(`set -e
echo "job-docker-config=$DOCKER_CONFIG"
printf '%%s\n' "$LOGIN_PASSWORD" | docker login --username ci --password-stdin %[1]s
test "$(stat -c %%a "$DOCKER_CONFIG/config.json")" = 600
grep -q '"%[1]s"' "$DOCKER_CONFIG/config.json"
%[2]s
docker logout %[1]s
if printf %%s %[1]s | docker-credential-dockhand get; then echo "STILL-LOGGED-IN"; exit 7; fi
echo logged-out`, kit.Registry.Host, build("1"))
	id, agent := r.start(first, map[string]string{"LOGIN_PASSWORD": password})
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "logged-out") {
		t.Fatalf("the logged-in job: %+v\n%s", f, log)
	}
	if strings.Contains(log, password) {
		t.Errorf("the password appears in the first job's log")
	}
	second := fmt.Sprintf(`echo "job-docker-config=$DOCKER_CONFIG"
if printf %%s %[1]s | docker-credential-dockhand get; then echo "GOT-ANOTHER-JOBS-LOGIN"; exit 8; fi
if (%[2]s); then echo "PUSHED-WITH-ANOTHER-JOBS-LOGIN"; exit 9; fi
echo push-refused`, kit.Registry.Host, build("2"))
	id, agent = r.start(second, nil)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "push-refused") {
		t.Errorf("the second job: %+v\n%s", f, log)
	}
	if code := authedManifestStatus(t, kit.Registry.Host, "ci", password, "iso/app", "1"); code != http.StatusOK {
		t.Errorf("the first job's push: HTTP %d, want 200", code)
	}
	if code := authedManifestStatus(t, kit.Registry.Host, "ci", password, "iso/app", "2"); code != http.StatusNotFound {
		t.Errorf("the second job's push: HTTP %d, want 404 (refused)", code)
	}
	if left := r.jobDirs(); len(left) != 0 {
		t.Errorf("job dirs left: %q", left)
	}
	if holding := filesHolding(t, password, testRoot(t), kit.Dir, os.TempDir()+"/dockhand-"+fmt.Sprint(os.Getuid())); len(holding) != 0 {
		t.Errorf("files holding the password after the jobs: %q", holding)
	}
}

// TestCredentialsBuildkitePackagesOIDC: packages.buildkite.com is served
// with an agent OIDC token for the configured registry, requested once per
// job through the real `buildkite-agent oidc request-token`, and redacted
// from the log.
func TestCredentialsBuildkitePackagesOIDC(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n[packages]\nregistries = [\"acme/images\", \"acme/base\"]\n", r.state))
	command := `set -e
printf packages.buildkite.com | docker-credential-dockhand get
echo
printf https://packages.buildkite.com/acme/images | docker-credential-dockhand get
echo`
	id, agent := r.start(command, nil)
	harness.NoSecretInCmdlines(t, agentapi.OIDCSignature()) // in every token the API hands out
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit_status = %q\n%s", f.ExitStatus, log)
	}
	if got := r.srv.OIDCAudiences(); len(got) != 1 || got[0] != "https://packages.buildkite.com/acme/images" {
		t.Errorf("OIDC audiences requested = %q, want the first configured registry's, once", got)
	}
	if n := strings.Count(log, `"ServerURL":"packages.buildkite.com","Username":"buildkite","Secret":"[REDACTED]"`) +
		strings.Count(log, `"ServerURL":"https://packages.buildkite.com/acme/images","Username":"buildkite","Secret":"[REDACTED]"`); n != 2 {
		t.Errorf("want two redacted answers with user buildkite:\n%s", log)
	}
	tok := r.srv.OIDCToken(id, "https://packages.buildkite.com/acme/images")
	if tok == "" || strings.Contains(log, tok) {
		t.Errorf("the OIDC token (%d bytes) appears in the log", len(tok))
	}
	// Requested without --lifetime, as a plain step would: the API's
	// default five minutes, and the job's second get was served that token.
	if got := oidcLifetime(t, tok); got != agentapi.OIDCDefaultLifetime {
		t.Errorf("the Packages token lives %s, want the API's default %s", got, agentapi.OIDCDefaultLifetime)
	}
}

// TestCredentialsStaticFileInAJob: a registry configured with
// registry.static is pushed to with the file's credentials, no login.
func TestCredentialsStaticFileInAJob(t *testing.T) {
	t.Parallel()
	const password = "static-file-registry-password"
	harness.NoSecretInCmdlines(t, password)
	kit := harness.Start(t, harness.Options{RegistryUser: "robot", RegistryPassword: password})
	r := newRig(t)
	file := filepath.Join(r.tempDir(), "registry.json") // the agent user's (the test's 0600 file is given to it)
	if err := os.WriteFile(file, []byte(`{"username":"robot","password":"`+password+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n[registry]\nstatic = [%q]\n", r.state, kit.Registry.Host+"="+file))
	command := fmt.Sprintf(`set -e
printf 'FROM %s\nRUN echo static > /f\n' > Dockerfile
docker buildx create --name kit --driver remote %s >/dev/null
docker buildx build --builder kit --progress plain --push -t %s/static/app:1 .
printf %%s %s | docker-credential-dockhand get`, kit.BaseImage, kit.Buildkitd.Addr, kit.Registry.Host, kit.Registry.Host)
	id, agent := r.start(command, nil)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("exit_status = %q\n%s", f.ExitStatus, log)
	}
	if code := authedManifestStatus(t, kit.Registry.Host, "robot", password, "static/app", "1"); code != http.StatusOK {
		t.Errorf("the pushed image: HTTP %d, want 200", code)
	}
	if strings.Contains(log, password) || !strings.Contains(log, `"Username":"robot","Secret":"[REDACTED]"`) {
		t.Errorf("the password is not redacted from the log:\n%s", log)
	}
}
