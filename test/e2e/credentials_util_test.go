package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dockhand-ci/dockhand/test/ecrapi"
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
	dir := t.TempDir()
	if err := os.Symlink(dockhandBin(t), filepath.Join(dir, "docker-credential-dockhand")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "docker-credential-dockhand")
}

// helperRun is one run of the credential helper.
type helperRun struct {
	stdout, stderr string
	err            error
}

// runHelper runs `docker-credential-dockhand ACTION` with input on stdin and
// exactly env (plus PATH).
func runHelper(helper string, env map[string]string, action, input string) helperRun {
	cmd := exec.Command(helper, action)
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

// watcher samples /proc/*/cmdline of every process on the host for
// secrets. It is a sampler, not a synchronisation: it scans as fast as it
// can until stopped.
type watcher struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	hits  []string
	scans int
}

func watchCmdlines(secrets ...string) *watcher {
	w := &watcher{stop: make(chan struct{})}
	self := strconv.Itoa(os.Getpid())
	w.wg.Go(func() {
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
					continue
				}
				b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				if err != nil || len(b) == 0 {
					continue
				}
				for _, s := range secrets {
					if s != "" && bytes.Contains(b, []byte(s)) {
						w.mu.Lock()
						w.hits = append(w.hits, strings.ReplaceAll(strings.ReplaceAll(string(b), "\x00", " "), s, "<SECRET>"))
						w.mu.Unlock()
					}
				}
			}
			w.mu.Lock()
			w.scans++
			w.mu.Unlock()
		}
	})
	return w
}

// Hits returns what was found so far and the number of complete scans.
func (w *watcher) Hits() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.hits), w.scans
}

// Stop ends the sampling and returns what was found.
func (w *watcher) Stop() ([]string, int) {
	close(w.stop)
	w.wg.Wait()
	return w.Hits()
}

// cmdlineWatch watches /proc/*/cmdline for the secrets for the whole test
// and fails it if any process's command line held one.
func cmdlineWatch(t *testing.T, secrets ...string) {
	t.Helper()
	w := watchCmdlines(secrets...)
	t.Cleanup(func() {
		hits, scans := w.Stop()
		if scans == 0 {
			t.Errorf("the /proc/*/cmdline watch never completed a scan")
		}
		for _, h := range hits {
			t.Errorf("a command line held a secret: %s", h)
		}
		t.Logf("/proc/*/cmdline: %d scans of every process, no secret found", scans)
	})
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

// TestCmdlineWatchSeesSecrets checks the watch itself: a process whose
// command line holds a canary is found.
func TestCmdlineWatchSeesSecrets(t *testing.T) {
	const canary = "cmdline-watch-canary-7f3a"
	w := watchCmdlines(canary)
	cmd := exec.Command("/bin/sh", "-c", "read _", canary)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	// Two complete scans after the start: the process was there for both.
	_, at := w.Hits()
	for {
		hits, scans := w.Hits()
		if len(hits) > 0 {
			break
		}
		if scans > at+2 {
			t.Fatalf("the watch did not see %q in a running process's command line", canary)
		}
		runtime.Gosched()
	}
	hits, _ := w.Stop()
	if !strings.Contains(hits[0], "<SECRET>") || strings.Contains(hits[0], canary) {
		t.Errorf("hit = %q, want the canary masked", hits[0])
	}
}
