package bootstrap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/registry"
)

func TestGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  []string
		want time.Duration
	}{
		{"agent default", nil, 9 * time.Second},
		{"v3 resolved seconds", []string{"BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS=59"}, 59 * time.Second},
		{"v3 zero", []string{"BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS=0"}, 0},
		{"v3 wins over cancel grace", []string{"BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS=4", "BUILDKITE_CANCEL_GRACE_PERIOD=60"}, 4 * time.Second},
		{"v3 garbage falls through", []string{"BUILDKITE_SIGNAL_GRACE_PERIOD_SECONDS=soon", "BUILDKITE_CANCEL_GRACE_PERIOD=60"}, 59 * time.Second},
		{"v4 duration", []string{"BUILDKITE_CANCEL_SIGNAL_TIMEOUT=10s"}, 10 * time.Second},
		{"cancel grace only", []string{"BUILDKITE_CANCEL_GRACE_PERIOD=10"}, 9 * time.Second},
		{"cancel grace too small", []string{"BUILDKITE_CANCEL_GRACE_PERIOD=1"}, 9 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := GracePeriod(agentenv.FromSlice(tc.env)); got != tc.want {
				t.Errorf("GracePeriod(%q) = %s, want %s", tc.env, got, tc.want)
			}
		})
	}
}

func TestShellCommand(t *testing.T) {
	for _, tc := range []struct {
		shell string
		args  []string
		want  []string
		err   bool
	}{
		{"/bin/bash", []string{"-e", "-c", "echo hi"}, []string{"/bin/bash", "-e", "-c", "echo hi"}, false},
		{"/usr/bin/env bash", []string{"-c", "x"}, []string{"/usr/bin/env", "bash", "-c", "x"}, false},
		{`"/opt/my shell/bash" --noprofile`, []string{"-c", "x"}, []string{"/opt/my shell/bash", "--noprofile", "-c", "x"}, false},
		{`/bin/bash 'unterminated`, nil, nil, true},
		{"   ", nil, nil, true},
		{"/bin/bash", []string{"-e", "-c", "line1\nline2"}, []string{"/bin/bash", "-e", "-c", "line1\nline2"}, false},
	} {
		got, err := ShellCommand(tc.shell, tc.args)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ShellCommand(%q, %q) = %q, %v; want %q (error %v)", tc.shell, tc.args, got, err, tc.want, tc.err)
		}
	}
}

func TestParseUserDockerConfigDropsSecrets(t *testing.T) {
	u, err := ParseUserDockerConfig([]byte(`{
		"auths": {"r.example": {"auth": "dTpw"}},
		"credsStore": "desktop", "credHelpers": {"x": "ecr-login"},
		"HttpHeaders": {"Authorization": "Bearer abc"},
		"proxies": {"default": {"httpProxy": "http://proxy:3128"}},
		"detachKeys": "ctrl-e,e",
		"plugins": {"buildx": {"x": "y"}},
		"cliPluginsExtraDirs": ["/opt/plugins"],
		"currentContext": "remote"
	}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := JobConfig(u, Credentials{Helpers: []string{"nscr.io", "public.ecr.aws"}})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// No credsStore: a docker config without dockhand's helper must still
	// be readable (public pulls, the job's own logins in auths).
	want := []string{"credHelpers", "detachKeys", "plugins", "proxies"}
	if !slices.Equal(keys, want) {
		t.Errorf("job config keys = %q, want %q", keys, want)
	}
	if string(got["credHelpers"]) != "{\n\t\t\"nscr.io\": \"dockhand\",\n\t\t\"public.ecr.aws\": \"dockhand\"\n\t}" {
		t.Errorf("credHelpers = %s", got["credHelpers"])
	}
	withStore, err := JobConfig(u, Credentials{Store: true})
	if err != nil || !strings.Contains(string(withStore), `"credsStore": "dockhand"`) || strings.Contains(string(withStore), "credHelpers") {
		t.Errorf("registry.creds_store: %s, %v", withStore, err)
	}
	if !slices.Equal(u.ExtraDirs, []string{"/opt/plugins"}) {
		t.Errorf("ExtraDirs = %q", u.ExtraDirs)
	}
	if _, err := ParseUserDockerConfig([]byte("{not json")); err == nil {
		t.Error("a broken user config parsed")
	}
}

func TestExportsNeverAddLegacyDockerNames(t *testing.T) {
	e := agentenv.FromSlice([]string{"PATH=/usr/bin", "BUILDKITE_JOB_ID=1"})
	out := exports(e, "/state/jobs/j-1", "/usr/libexec/docker/cli-plugins/docker-buildx")
	want := map[string]string{
		"DOCKER_CONFIG":        "/state/jobs/j-1/docker",
		"DOCKHAND_JOB_DIR":     "/state/jobs/j-1",
		"DOCKHAND_REAL_BUILDX": "/usr/libexec/docker/cli-plugins/docker-buildx",
		"PATH":                 "/state/jobs/j-1/bin:/usr/bin",
	}
	for k, v := range want {
		if got, _ := out.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, kv := range out.ToSlice() {
		if strings.HasPrefix(kv, "BUILDKITE_DOCKER") {
			t.Errorf("exports legacy docker-mode variable %s", kv)
		}
	}
	if _, ok := e.Get("DOCKER_CONFIG"); ok {
		t.Error("exports changed the environment it was given")
	}
}

func TestReconcileCarriesLoginsAndHelpers(t *testing.T) {
	jobDir := t.TempDir()
	if err := SeedDockerConfig(filepath.Join(jobDir, "docker"), UserDockerConfig{}, Credentials{}, "/usr/local/bin/dockhand"); err != nil {
		t.Fatal(err)
	}
	stack := t.TempDir() // what the Elastic stack's environment hook made
	os.WriteFile(filepath.Join(stack, "config.json"), []byte(`{
		"auths": {"127.0.0.1:5000": {"auth": "Y2k6czNjcmV0"}},
		"credHelpers": {"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"}
	}`), 0o600)
	r, err := Reconcile(t.Context(), jobDir, stack, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.From != stack || r.DockerConfig != filepath.Join(jobDir, "docker") {
		t.Errorf("Reconcile = %+v", r)
	}
	l, ok, err := registry.JobStore(jobDir).Get("127.0.0.1:5000")
	if err != nil || !ok || l.Username != "ci" || l.Secret != "s3cret" {
		t.Errorf("imported login = %+v, %v, %v", l, ok, err)
	}
	data, _ := os.ReadFile(filepath.Join(jobDir, "docker", "config.json"))
	if !strings.Contains(string(data), `"123456789012.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"`) ||
		!strings.Contains(string(data), `"auth": "Y2k6czNjcmV0"`) || strings.Contains(string(data), "credsStore") {
		t.Errorf("job config after reconcile:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(stack, "config.json")); err != nil {
		t.Errorf("the stack's own dir was touched: %v", err)
	}
	same, err := Reconcile(t.Context(), jobDir, filepath.Join(jobDir, "docker"), nil)
	if err != nil || same.From != "" || len(same.Imported) != 0 {
		t.Errorf("Reconcile of the job's own config = %+v, %v", same, err)
	}
}

func TestReconcileToleratesEmptyAndBrokenConfigs(t *testing.T) {
	jobDir := t.TempDir()
	SeedDockerConfig(filepath.Join(jobDir, "docker"), UserDockerConfig{}, Credentials{}, "/x/dockhand")
	empty := t.TempDir()
	if r, err := Reconcile(t.Context(), jobDir, empty, nil); err != nil || r.From != empty || len(r.Imported) != 0 {
		t.Errorf("empty dir: %+v, %v", r, err)
	}
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "config.json"), []byte("{"), 0o600)
	r, err := Reconcile(t.Context(), jobDir, broken, nil)
	if err != nil || len(r.Lines) != 1 || r.Lines[0].Severity != joblog.Warning {
		t.Errorf("broken config: %+v, %v", r, err)
	}
}

// TestReconcileHandsBackTheHelpersWarnings: what the credential helper
// could not do while a login was carried over (the job's log redactor out
// of reach) comes back from Reconcile as a warning line, with no text read
// back, and the environment hook prints it once, as a warning.
func TestReconcileHandsBackTheHelpersWarnings(t *testing.T) {
	jobDir := t.TempDir()
	SeedDockerConfig(filepath.Join(jobDir, "docker"), UserDockerConfig{}, Credentials{}, "/x/dockhand")
	stack := t.TempDir()
	os.WriteFile(filepath.Join(stack, "config.json"), []byte(`{"auths": {"127.0.0.1:5000": {"auth": "Y2k6czNjcmV0"}}}`), 0o600)
	e := agentenv.FromMap(map[string]string{JobDirVar: jobDir, DockerConfigVar: stack,
		"BUILDKITE_AGENT_JOB_API_SOCKET": filepath.Join(t.TempDir(), "gone.sock"), "BUILDKITE_AGENT_JOB_API_TOKEN": "t0ken"})
	const lost = "could not add a credential to the job's log redactor: "
	r, err := Reconcile(t.Context(), jobDir, stack, e)
	if err != nil || len(r.Lines) != 1 || r.Lines[0].Severity != joblog.Warning || !strings.HasPrefix(r.Lines[0].Text, lost) {
		t.Fatalf("Reconcile = %+v, %v; want one warning that the redactor was not reached", r, err)
	}
	var out, log strings.Builder
	if err := EnvironmentHook(t.Context(), e, &out, &log); err != nil {
		t.Fatal(err)
	}
	if strings.Count(log.String(), "dockhand: warning: "+lost) != 1 || strings.Contains(log.String(), "warning: warning") {
		t.Errorf("hook log:\n%s\nwant the warning once", log.String())
	}
}
