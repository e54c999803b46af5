package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// Shared by the credentials tests.

// Test AWS credentials the fake ECR API accepts.
const (
	awsKey    = "AKIADOCKHANDE2E00001"
	awsSecret = "e2e-secret-access-key-not-for-real"
)

// startECR starts the fake ECR API issuing tokens that carry password.
func startECR(t *testing.T, password string, registryHost func(account, region string) string) *ecrapi.Server {
	t.Helper()
	s, err := ecrapi.Start(ecrapi.Options{
		Keys: map[string]string{awsKey: awsSecret}, Password: password, RegistryHost: registryHost,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// awsEnv is the environment that points the AWS SDK's default chain at the
// fake: static keys, the ECR endpoints, no IMDS, no shared files.
func awsEnv(s *ecrapi.Server, home string) map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":           awsKey,
		"AWS_SECRET_ACCESS_KEY":       awsSecret,
		"AWS_ENDPOINT_URL_ECR":        s.URL,
		"AWS_ENDPOINT_URL_ECR_PUBLIC": s.URL,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(home, "no-aws-credentials"),
	}
}

// helperLink makes a dir holding docker-credential-dockhand, a link to the
// dockhand under test, as a job's bin/ has it.
func helperLink(t *testing.T) string {
	t.Helper()
	dir := userTempDir(t)
	if err := os.Symlink(harness.DockhandBin(t), filepath.Join(dir, "docker-credential-dockhand")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "docker-credential-dockhand")
}

// helperRun is one run of the credential helper.
type helperRun struct {
	stdout, stderr string
	err            error
}

// runHelper runs `docker-credential-dockhand ACTION` as u with input on
// stdin and exactly env (plus PATH).
func runHelper(u *harness.User, helper string, env map[string]string, action, input string) helperRun {
	cmd := exec.Command(helper, action)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return helperRun{out.String(), errb.String(), err}
}

// filesHolding walks roots and returns the files whose content holds secret.
func filesHolding(t *testing.T, secret string, roots ...string) []string {
	t.Helper()
	var found []string
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if info, err := d.Info(); err != nil || info.Size() > 256<<20 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte(secret)) {
				found = append(found, p)
			}
			return nil
		})
	}
	return found
}

// testRoot is the directory every t.TempDir of the test lives in.
func testRoot(t *testing.T) string { return filepath.Dir(t.TempDir()) }
