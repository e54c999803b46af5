package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker-credential-helpers/credentials"
	"github.com/dockhand-ci/dockhand/registry"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// These tests run the real docker-credential-dockhand (the dockhand binary
// under that name, with dockhand-cloud beside it) against the fake ECR API
// through the real AWS SDK, the way docker runs it: one process per call.

const ecrHost = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

// ecrHelperRig is a helper environment outside a job: a config file with a
// state dir, and AWS settings pointing at the fake; the helper runs as the
// stack's agent user, who owns the state dir.
type ecrHelperRig struct {
	user   *harness.User
	helper string
	state  string
	env    map[string]string
	ecr    *ecrapi.Server
}

func newECRHelperRig(t *testing.T, password string) *ecrHelperRig {
	t.Helper()
	u := harness.MustStackUser(t)
	dir := u.TempDir(t)
	r := &ecrHelperRig{user: u, helper: helperLink(t), state: filepath.Join(dir, "state"), ecr: startECR(t, password, nil)}
	config := filepath.Join(dir, "dockhand.toml")
	writeFile(t, config, fmt.Sprintf("state_dir = %q\n", r.state))
	r.env = awsEnv(r.ecr, dir)
	r.env["HOME"] = dir
	r.env["DOCKHAND_CONFIG"] = config
	if err := u.Chown(dir); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *ecrHelperRig) get(host string) helperRun {
	return runHelper(r.user, r.helper, r.env, "get", host)
}

// creds decodes a get's answer, failing the test on anything else.
func creds(t *testing.T, run helperRun) credentials.Credentials {
	t.Helper()
	var c credentials.Credentials
	if run.err != nil || json.Unmarshal([]byte(run.stdout), &c) != nil {
		t.Fatalf("get: %v\nstdout: %s\nstderr: %s", run.err, run.stdout, run.stderr)
	}
	return c
}

func (r *ecrHelperRig) cacheFile() string {
	return filepath.Join(r.state, registry.TokenCacheDirName, "ecr.json")
}

func TestCredentialsECRConcurrentColdGetsMakeOneCall(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-password-concurrent"
	harness.NoSecretInCmdlines(t, password, awsSecret)
	r := newECRHelperRig(t, password)
	var wg sync.WaitGroup
	runs := make([]helperRun, 8)
	start := time.Now()
	for i := range runs {
		wg.Go(func() { runs[i] = r.get(ecrHost) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, run := range runs {
		c := creds(t, run)
		if c.Username != "AWS" || c.Secret != password || c.ServerURL != ecrHost {
			t.Errorf("get %d answered %+v", i, c)
		}
		if run.stderr != "" {
			t.Errorf("get %d printed on stderr: %q", i, run.stderr)
		}
	}
	if n := r.ecr.Calls(ecrapi.OpGetAuthorizationToken); n != 1 {
		t.Errorf("8 concurrent cold gets made %d GetAuthorizationToken calls, want exactly 1", n)
	}
	call := r.ecr.Log()[0]
	if call.AccessKeyID != awsKey || call.Region != "us-east-1" || len(call.RegistryIDs) != 1 || call.RegistryIDs[0] != "123456789012" {
		t.Errorf("the call was %+v", call)
	}
	t.Logf("8 concurrent cold gets: 1 API call, %s in all", took.Round(time.Millisecond))
	fi, err := os.Stat(r.cacheFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token cache: %v %v", err, fi)
	}
	// Warm: no call at all.
	if c := creds(t, r.get("https://"+ecrHost)); c.Secret != password || r.ecr.Calls(ecrapi.OpGetAuthorizationToken) != 1 {
		t.Errorf("warm get: %+v after %d calls", c, r.ecr.Calls(ecrapi.OpGetAuthorizationToken))
	}
}

// nearExpiry rewrites every cached token as requested 11h50m ago and
// expiring in 10 minutes (or already expired when expired is set).
func nearExpiry(t *testing.T, file string, expired bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var tokens map[string]registry.Token
	if err := json.Unmarshal(f["tokens"], &tokens); err != nil || len(tokens) == 0 {
		t.Fatalf("no tokens in %s: %v", file, err)
	}
	now := time.Now()
	for k, tok := range tokens {
		tok.RequestedAt, tok.ExpiresAt = now.Add(-11*time.Hour-50*time.Minute), now.Add(10*time.Minute)
		if expired {
			tok.ExpiresAt = now.Add(-time.Minute)
		}
		tokens[k] = tok
	}
	f["tokens"], _ = json.Marshal(tokens)
	out, _ := json.Marshal(f)
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialsECRNearExpiryIsRefreshed(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-password-refresh"
	harness.NoSecretInCmdlines(t, password, awsSecret)
	r := newECRHelperRig(t, password)
	creds(t, r.get(ecrHost))
	if n := r.ecr.Calls(ecrapi.OpGetAuthorizationToken); n != 1 {
		t.Fatalf("first get: %d calls", n)
	}

	// Ten minutes left of twelve hours: the next get refreshes it.
	nearExpiry(t, r.cacheFile(), false)
	if c := creds(t, r.get(ecrHost)); c.Secret != password {
		t.Errorf("refreshed get = %+v", c)
	}
	if n := r.ecr.Calls(ecrapi.OpGetAuthorizationToken); n != 2 {
		t.Errorf("a token near expiry was not refreshed: %d calls, want 2", n)
	}
	data, _ := os.ReadFile(r.cacheFile())
	if !strings.Contains(string(data), `"expires_at": "`+time.Now().Add(12*time.Hour).UTC().Format("2006-01-02T15")) {
		t.Errorf("the cache does not hold the new 12h token:\n%s", strings.ReplaceAll(string(data), password, "<SECRET>"))
	}

	// Near expiry and the API refuses: the still valid token is served,
	// with one line on stderr.
	nearExpiry(t, r.cacheFile(), false)
	r.ecr.DenyNext(1)
	run := r.get(ecrHost)
	if c := creds(t, run); c.Secret != password {
		t.Errorf("fallback get = %+v", c)
	}
	if strings.Count(run.stderr, "\n") != 1 || !strings.Contains(run.stderr, "AccessDeniedException") ||
		!strings.Contains(run.stderr, "using the cached one") {
		t.Errorf("fallback stderr = %q, want one line", run.stderr)
	}

	// Expired and the API refuses: the standard not-found, one line, no secret.
	nearExpiry(t, r.cacheFile(), true)
	r.ecr.DenyNext(1)
	run = r.get(ecrHost)
	if run.err == nil || strings.TrimSpace(run.stdout) != "credentials not found in native keychain" {
		t.Errorf("get with no usable token: %v, stdout %q", run.err, run.stdout)
	}
	if strings.Count(run.stderr, "\n") != 1 || strings.Contains(run.stderr, password) || strings.Contains(run.stderr, awsSecret) {
		t.Errorf("stderr = %q, want one line without a secret", run.stderr)
	}
}

func TestCredentialsECRThrottlingIsRetried(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-password-throttled"
	harness.NoSecretInCmdlines(t, password, awsSecret)
	r := newECRHelperRig(t, password)
	r.ecr.ThrottleNext(2)
	r.ecr.FailNext(1)
	run := r.get(ecrHost)
	if c := creds(t, run); c.Secret != password {
		t.Errorf("get = %+v", c)
	}
	if run.stderr != "" {
		t.Errorf("a retried get printed %q", run.stderr)
	}
	log := r.ecr.Log()
	if len(log) != 4 || log[0].Injected != "ThrottlingException" || log[1].Injected != "ThrottlingException" ||
		log[2].Injected != "ServerException" || log[3].Injected != "" {
		t.Errorf("calls = %+v, want 2 throttled, 1 server error, 1 answered", log)
	}
}

func TestCredentialsECRPublicAndAnonymousFallback(t *testing.T) {
	t.Parallel()
	const password = "ecr-public-token-password"
	harness.NoSecretInCmdlines(t, password, awsSecret)
	r := newECRHelperRig(t, password)
	if c := creds(t, r.get("public.ecr.aws")); c.Username != "AWS" || c.Secret != password {
		t.Errorf("public get = %+v", c)
	}
	if n := r.ecr.Calls(ecrapi.OpPublicGetAuthorizationToken); n != 1 || r.ecr.Log()[0].Region != "us-east-1" {
		t.Errorf("public calls = %d, log %+v", n, r.ecr.Log())
	}
	// Any other registry: not found, nothing on stderr, no API call.
	for _, host := range []string{"ghcr.io", "123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example", "https://index.docker.io/v1/"} {
		run := r.get(host)
		if run.err == nil || strings.TrimSpace(run.stdout) != "credentials not found in native keychain" || run.stderr != "" {
			t.Errorf("get %s: %v %q %q", host, run.err, run.stdout, run.stderr)
		}
	}
	if len(r.ecr.Log()) != 1 {
		t.Errorf("calls for non-ECR hosts: %+v", r.ecr.Log())
	}
	// No AWS credentials at all: not found and one line, never a crash.
	delete(r.env, "AWS_ACCESS_KEY_ID")
	delete(r.env, "AWS_SECRET_ACCESS_KEY")
	run := r.get("210987654321.dkr.ecr.eu-west-1.amazonaws.com")
	if run.err == nil || strings.TrimSpace(run.stdout) != "credentials not found in native keychain" ||
		strings.Count(run.stderr, "\n") != 1 || !strings.Contains(run.stderr, "no AWS credentials") {
		t.Errorf("get without credentials: %v %q %q", run.err, run.stdout, run.stderr)
	}
}

func TestCredentialsDoctorSaysWhereECRCredentialsComeFrom(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-password-doctor"
	r := newECRHelperRig(t, password)
	doctor := func(extra ...string) string {
		cmd := exec.Command(harness.DockhandBin(t), append([]string{"doctor", "--registry", ecrHost, "--registry", "public.ecr.aws"}, extra...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		for k, v := range r.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		// As operations.md runs it: sudo -u buildkite-agent dockhand doctor.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.user.Credential()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("doctor: %v\n%s", err, out)
		}
		if strings.Contains(string(out), password) {
			t.Fatalf("doctor printed the token:\n%s", out)
		}
		return string(out)
	}
	out := doctor()
	for _, want := range []string{ecrHost + "  ok  ecr: user \"AWS\", ECR API, expires in 12h0m0s", "public.ecr.aws"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if out := doctor(); !strings.Contains(out, ecrHost+"  ok  ecr: user \"AWS\", cached token") {
		t.Errorf("second doctor run does not say the token came from the cache:\n%s", out)
	}
	if n := r.ecr.Calls(ecrapi.OpGetAuthorizationToken); n != 1 {
		t.Errorf("GetAuthorizationToken calls = %d, want 1", n)
	}
	var report struct {
		Credentials []struct {
			Registry, Status, Source, User string
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(doctor("--json")), &report); err != nil {
		t.Fatalf("doctor --json: %v", err)
	}
	if len(report.Credentials) != 2 || report.Credentials[0].Registry != ecrHost || report.Credentials[0].Status != "ok" ||
		report.Credentials[0].Source != "ecr" || report.Credentials[0].User != "AWS" {
		t.Errorf("doctor --json credentials = %+v", report.Credentials)
	}
}
