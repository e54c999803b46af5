package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dockhand-ci/dockhand/cachedimage"
	"github.com/dockhand-ci/dockhand/test/ecrapi"
	"github.com/dockhand-ci/dockhand/test/harness"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/sys/unix"
)

// `dockhand cached-image` end to end: the real registry and buildkitd, the
// fake ECR API (the real aws-sdk-go-v2 talking to it), the real agent.

const cacheDockerfile = "FROM %s\nCOPY package.json /app/package.json\nRUN echo deps-installed-for-$(cat /app/package.json | wc -c) > /app/deps\n"

// buildRecords counts the builds buildkitd has recorded (its build history,
// one record per solve), with the real buildctl.
func buildRecords(t *testing.T, kit *harness.Env) int {
	t.Helper()
	out, err := kit.Command(t.TempDir(), nil, "buildctl", "--addr", kit.Buildkitd.Addr, "debug", "histories", "--format", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl debug histories: %v\n%s", err, out)
	}
	var records []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("buildctl debug histories: %v\n%s", err, out)
		}
		switch v := v.(type) {
		case []any:
			for range v {
				records = append(records, nil)
			}
		case nil:
		default:
			records = append(records, nil)
		}
	}
	return len(records)
}

// pluginScriptTag computes the tag with the plugin's algorithm in real bash
// (the unit tests' reference script), in dir with env.
func pluginScriptTag(t *testing.T, dir string, env []string) string {
	t.Helper()
	root := harness.MustRepoRoot(t)
	toolBin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(toolBin, "jq")); err != nil {
		t.Fatalf("Debian's jq is missing from %s: run make tools", toolBin)
	}
	cmd := exec.Command("/bin/bash", filepath.Join(root, "cachedimage/testdata/plugin-tag.bash"))
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "JQ=" + filepath.Join(toolBin, "jq")}, env...)
	devnull, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer devnull.Close()
	cmd.ExtraFiles = []*os.File{devnull}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plugin-tag.bash: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// cachedImageDocker is a docker client set up as a job's: the real buildx
// plugin and a remote builder on the kit's buildkitd, named by
// BUILDX_BUILDER.
func cachedImageDocker(t *testing.T, kit *harness.Env) []string {
	t.Helper()
	env, err := kit.DockerConfig(filepath.Join(t.TempDir(), "docker"), "kit", kit.Buildkitd)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

type cachedRun struct {
	stdout, stderr string
	err            error
}

func runCachedImage(t *testing.T, dir string, env []string, args ...string) cachedRun {
	t.Helper()
	cmd := exec.Command(harness.DockhandBin(t), append([]string{"cached-image"}, args...)...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return cachedRun{out.String(), errb.String(), err}
}

// TestCachedImageBuildsOnceThenReuses: the first run builds and pushes
// :TAG and :latest; the second finds :TAG with a manifest HEAD and runs no
// build at all; changing a cache-on file changes the tag and builds again.
// The tag is the plugin's, computed by its algorithm in real bash.
func TestCachedImageBuildsOnceThenReuses(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	work := t.TempDir()
	writeFile(t, filepath.Join(work, "Dockerfile"), fmt.Sprintf(cacheDockerfile, kit.BaseImage))
	writeFile(t, filepath.Join(work, "package.json"), `{"name": "app", "dependencies": {"left-pad": "1.3.0"}}`)
	docker := cachedImageDocker(t, kit)
	const p = cachedimage.EnvPrefix
	pluginEnv := []string{
		"LC_ALL=C.UTF-8", "BUILDKITE_ORGANIZATION_SLUG=acme", "BUILDKITE_PIPELINE_SLUG=web",
		p + "REGISTRY_PROVIDER=gcr", p + "GCP_PROJECT=proj", p + "REGISTRY_HOSTNAME=" + kit.Registry.Host,
		p + "CACHE_ON_0=package.json", p + "CACHE_ON_1=package.json#.dependencies", p + "BUILD_ARGS_0=STAGE=ci",
	}
	env := append(append([]string{"PATH=" + kit.Path(), "HOME=" + work}, docker...), pluginEnv...)
	image := kit.Registry.Host + "/proj/build-cache/acme/web"
	repo := "proj/build-cache/acme/web"

	printTag := func() string {
		t.Helper()
		r := runCachedImage(t, work, env, "--print-tag")
		if r.err != nil {
			t.Fatalf("--print-tag: %v\n%s", r.err, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	before := buildRecords(t, kit) // the base image's, when this kit's buildkitd built it
	tag := printTag()
	if want := pluginScriptTag(t, work, pluginEnv); tag != want {
		t.Fatalf("--print-tag = %q, the plugin's algorithm gives %q", tag, want)
	}
	if n := buildRecords(t, kit); n != before {
		t.Fatalf("build records before the first run: %d, want %d as before --print-tag: it must not build", n, before)
	}

	first := runCachedImage(t, work, env)
	if first.err != nil {
		t.Fatalf("first run: %v\n%s", first.err, first.stderr)
	}
	exported := "BUILDKITE_PLUGIN_DOCKER_IMAGE=" + image + ":" + tag + "\n"
	if !strings.Contains(first.stdout, exported) ||
		!strings.Contains(first.stdout, cachedimage.ExportImageVar+"="+image+"\n") ||
		!strings.Contains(first.stdout, cachedimage.ExportTagVar+"="+tag+"\n") {
		t.Errorf("first run printed:\n%s\nwant %s and the image and tag variables", first.stdout, exported)
	}
	if !regexp.MustCompile(`(?m)^#\d+ \[\d/\d\] RUN echo deps-installed`).MatchString(first.stderr) {
		t.Errorf("no plain BuildKit progress for the RUN step:\n%s", first.stderr)
	}
	if !strings.Contains(first.stderr, "no Job API here") {
		t.Errorf("outside a job, no warning that nothing was exported:\n%s", first.stderr)
	}
	for _, tg := range []string{tag, "latest"} {
		if code := manifestStatus(t, kit.Registry.Host, repo, tg); code != http.StatusOK {
			t.Errorf("%s:%s after the first run: HTTP %d, want 200", image, tg, code)
		}
	}
	afterFirst := buildRecords(t, kit)
	if afterFirst != before+1 {
		t.Errorf("build records after the first run: %d, want %d", afterFirst, before+1)
	}

	second := runCachedImage(t, work, env)
	if second.err != nil {
		t.Fatalf("second run: %v\n%s", second.err, second.stderr)
	}
	if !strings.Contains(second.stdout, exported) {
		t.Errorf("second run exported\n%s\nwant %s", second.stdout, exported)
	}
	if !strings.Contains(second.stderr, "is in the registry: nothing to build") || strings.Contains(second.stderr, "RUN echo") {
		t.Errorf("second run did not reuse the image:\n%s", second.stderr)
	}
	if n := buildRecords(t, kit); n != afterFirst {
		t.Errorf("build records after the second run: %d, want %d (no solve at all)", n, afterFirst)
	}

	writeFile(t, filepath.Join(work, "package.json"), `{"name": "app", "dependencies": {"left-pad": "1.3.1"}}`)
	newTag := printTag()
	if newTag == tag || newTag != pluginScriptTag(t, work, pluginEnv) {
		t.Fatalf("after changing package.json the tag is %q (was %q); the plugin's algorithm gives %q", newTag, tag, pluginScriptTag(t, work, pluginEnv))
	}
	// On a terminal (and outside a job) the build shows BuildKit's live
	// display instead of plain lines.
	third, screen := runCachedImageOnTerminal(t, work, env)
	if third.err != nil {
		t.Fatalf("third run: %v\n%s", third.err, screen)
	}
	if !strings.Contains(third.stdout, "BUILDKITE_PLUGIN_DOCKER_IMAGE="+image+":"+newTag+"\n") {
		t.Errorf("third run did not export the new tag:\n%s", third.stdout)
	}
	if !strings.Contains(screen, "[+] Building") || !strings.Contains(screen, "RUN echo deps-installed") || !strings.Contains(screen, "\x1b[") {
		t.Errorf("no live BuildKit display on the terminal:\n%q", screen)
	}
	if n := buildRecords(t, kit); n != afterFirst+1 {
		t.Errorf("build records after the third run: %d, want %d", n, afterFirst+1)
	}
	if code := manifestStatus(t, kit.Registry.Host, repo, newTag); code != http.StatusOK {
		t.Errorf("%s:%s: HTTP %d, want 200", image, newTag, code)
	}
}

// TestCachedImageAdditionalBuildArgs: additional-build-args reach the job's
// docker buildx build as the plugin passes them, buildx-only flags
// included. The plugin README's `--ssh= default=$SSH_AUTH_SOCK` (as the agent
// hands it over from `'--ssh= default=\$SSH_AUTH_SOCK'` in the pipeline:
// the `$` unexpanded) forwards the job's SSH agent to RUN --mount=type=ssh;
// `--secret id=tok,env=TOKEN` serves the job's variable to RUN
// --mount=type=secret, and `--build-context lib=lib` names a second context.
// Each RUN fails the build when its part is missing. A flag docker does not
// know fails as docker says, with nothing pushed.
func TestCachedImageAdditionalBuildArgs(t *testing.T) {
	t.Parallel()
	const token = "token-for-the-secret-mount-4b1e"
	harness.NoSecretInCmdlines(t, token)
	kit := harness.Start(t, harness.Options{})
	work := t.TempDir()
	sum := sha256.Sum256([]byte(token))
	writeFile(t, filepath.Join(work, "Dockerfile"), fmt.Sprintf(`FROM %s
RUN --mount=type=ssh [ -S "$SSH_AUTH_SOCK" ] && echo "ssh agent forwarded at $SSH_AUTH_SOCK"
RUN --mount=type=secret,id=tok [ "$(sha256sum /run/secrets/tok | cut -c1-64)" = %s ] && echo secret-mounted
COPY --from=lib hello.txt /hello.txt
RUN grep -q hello-from-lib /hello.txt && echo build-context-used
`, kit.BaseImage, hex.EncodeToString(sum[:])))
	writeFile(t, filepath.Join(work, "lib", "hello.txt"), "hello-from-lib\n")
	const p = cachedimage.EnvPrefix
	pluginEnv := []string{
		"LC_ALL=C.UTF-8", "BUILDKITE_ORGANIZATION_SLUG=acme", "BUILDKITE_PIPELINE_SLUG=ssh",
		p + "REGISTRY_PROVIDER=gcr", p + "GCP_PROJECT=proj", p + "REGISTRY_HOSTNAME=" + kit.Registry.Host,
		p + "ADDITIONAL_BUILD_ARGS=--ssh= default=$SSH_AUTH_SOCK --secret id=tok,env=TOKEN --build-context lib=lib",
	}
	env := append(append([]string{"PATH=" + kit.Path(), "HOME=" + work, "BUILDKITE_JOB_ID=job-1",
		"SSH_AUTH_SOCK=" + startSSHAgent(t), "TOKEN=" + token}, cachedImageDocker(t, kit)...), pluginEnv...)
	tag := pluginScriptTag(t, work, pluginEnv)
	repo := "proj/build-cache/acme/ssh"

	r := runCachedImage(t, work, env)
	if r.err != nil {
		t.Fatalf("cached-image: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{
		`additional-build-args: read "--ssh=" "default=$SSH_AUTH_SOCK" as "--ssh=default=$SSH_AUTH_SOCK"`,
		"BUILDKITE_PLUGIN_DOCKER_IMAGE=" + kit.Registry.Host + "/" + repo + ":" + tag,
	} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("output lacks %q:\n%s\n%s", want, r.stderr, r.stdout)
		}
	}
	// What each RUN printed (not its command line, which BuildKit shows too).
	for _, line := range []string{"ssh agent forwarded at /run/buildkit/ssh_agent.0", "secret-mounted", "build-context-used"} {
		if !regexp.MustCompile(`(?m)^#\d+ \d+\.\d+ ` + regexp.QuoteMeta(line) + `$`).MatchString(r.stderr) {
			t.Errorf("no RUN output %q:\n%s", line, r.stderr)
		}
	}
	if strings.Contains(r.stderr+r.stdout, token) {
		t.Errorf("the secret's value is in the output")
	}
	for _, tg := range []string{tag, "latest"} {
		if code := manifestStatus(t, kit.Registry.Host, repo, tg); code != http.StatusOK {
			t.Errorf("%s:%s: HTTP %d, want 200", repo, tg, code)
		}
	}

	// docker, not dockhand, judges the flags: one it does not know fails
	// the build as it would with the plugin, and nothing is pushed.
	bad := append(append([]string{}, env...), p+"ADDITIONAL_BUILD_ARGS=--no-such-flag")
	badTag := pluginScriptTag(t, work, append(append([]string{}, pluginEnv...), p+"ADDITIONAL_BUILD_ARGS=--no-such-flag"))
	r = runCachedImage(t, work, bad)
	if r.err == nil || !strings.Contains(r.stderr, "unknown flag: --no-such-flag") ||
		!strings.Contains(r.stderr, "building "+kit.Registry.Host+"/"+repo+":"+badTag+": docker buildx build: exit status") {
		t.Errorf("an unknown flag: %v\n%s", r.err, r.stderr)
	}
	if code := manifestStatus(t, kit.Registry.Host, repo, badTag); code != http.StatusNotFound {
		t.Errorf("%s:%s after a failed build: HTTP %d, want 404", repo, badTag, code)
	}
}

// startSSHAgent serves an SSH agent holding one new key on a unix socket
// for the test's lifetime, and returns the socket's path.
func startSSHAgent(t *testing.T) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key, Comment: "dockhand-e2e"}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(keyring, c)
			}()
		}
	}()
	return sock
}

// TestCachedImagePrintTagAndErrors: --print-tag with a jq filter only
// dockhand-cloud can evaluate (gojq) still gives the plugin's tag; a bad
// option fails before any work, saying which option and why.
func TestCachedImagePrintTagAndErrors(t *testing.T) {
	t.Parallel()
	work := t.TempDir()
	writeFile(t, filepath.Join(work, "Dockerfile"), "FROM scratch\n")
	writeFile(t, filepath.Join(work, "package.json"), `{"name": "Demo-App", "version": "2.0.1"}`)
	pluginEnv := []string{"LC_ALL=C.UTF-8", cachedimage.EnvPrefix + "CACHE_ON_0=package.json#.name|ascii_downcase",
		cachedimage.EnvPrefix + "CACHE_ON_1=package.json#.version|split(\".\")|.[0]"}
	r := runCachedImage(t, work, append([]string{"PATH=/usr/bin:/bin"}, pluginEnv...), "--print-tag")
	if want := pluginScriptTag(t, work, pluginEnv); r.err != nil || strings.TrimSpace(r.stdout) != want {
		t.Errorf("--print-tag with gojq filters: %q (%v, %s), the plugin's algorithm gives %q", r.stdout, r.err, r.stderr, want)
	}

	// A warning about the options is printed once, also when dockhand
	// hands the tag over to dockhand-cloud (which reads them again).
	r = runCachedImage(t, work, []string{"PATH=/usr/bin:/bin", "LANG=en_US.UTF-8",
		cachedimage.EnvPrefix + "CACHE_ON_1=0a.lock", // before _10 in en_US's collation, after it in bytes
		cachedimage.EnvPrefix + "CACHE_ON_10=package.json#.name|ascii_downcase"}, "--print-tag")
	if n := strings.Count(r.stderr, "`env | sort` order"); r.err != nil || n != 1 {
		t.Errorf("the options' sort warning, printed %d times, want once (%v):\n%s", n, r.err, r.stderr)
	}

	env := []string{"PATH=/usr/bin:/bin", cachedimage.EnvPrefix + "REGISTRY_PROVIDER=quay"}
	r = runCachedImage(t, work, env, "--print-tag")
	var ee *exec.ExitError
	if r.err == nil || !errorsAs(r.err, &ee) || ee.ExitCode() != 2 ||
		!strings.Contains(r.stderr, `registry-provider "quay" (from `+cachedimage.EnvPrefix+`REGISTRY_PROVIDER): unknown provider`) {
		t.Errorf("unknown provider: %v\n%s", r.err, r.stderr)
	}
	r = runCachedImage(t, work, []string{"PATH=/usr/bin:/bin"}, "--print-tag", "--cache-on", "nope.json#.a")
	if r.err == nil || !strings.Contains(r.stderr, `cache-on "nope.json#.a": jq filter ".a" on nope.json`) {
		t.Errorf("jq on a missing file: %v\n%s", r.err, r.stderr)
	}
	r = runCachedImage(t, work, []string{"PATH=/usr/bin:/bin"}, "--print-tag", "--cache-on", "*.lock")
	if r.err != nil || !strings.Contains(r.stderr, `warning: cache-on "*.lock" matched no file`) || len(strings.TrimSpace(r.stdout)) != 7 {
		t.Errorf("a glob matching nothing: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
}

// runCachedImageOnTerminal runs `dockhand cached-image` with its stderr on
// a pseudo-terminal and returns what the terminal showed.
func runCachedImageOnTerminal(t *testing.T, dir string, env []string, args ...string) (cachedRun, string) {
	t.Helper()
	master, slave := openPTY(t)
	cmd := exec.Command(harness.DockhandBin(t), append([]string{"cached-image"}, args...)...)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, slave
	screen := make(chan string)
	go func() {
		var b bytes.Buffer
		io.Copy(&b, master) // ends with EIO once every writer has closed the slave
		screen <- b.String()
	}()
	err := cmd.Run()
	slave.Close()
	s := <-screen
	master.Close()
	return cachedRun{stdout: out.String(), err: err}, s
}

// openPTY opens a pseudo-terminal pair with /dev/ptmx.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

func singleQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func errorsAs(err error, target **exec.ExitError) bool {
	return errors.As(err, target)
}

// recordingProxy fronts the fake ECR API and records each call's target and
// body (the SigV4 signature covers the Host the SDK used, the proxy's, which
// is what the fake receives).
func recordingProxy(t *testing.T, target string) (string, func() []string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls []string
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		calls = append(calls, r.Header.Get("X-Amz-Target")+" "+string(body))
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), calls...)
	}
}

// cachedImageHook makes the rig's pre-command hook write the Dockerfile and
// package.json below and run `dockhand cached-image`, and returns the tag
// the plugin's algorithm gives for them and pluginEnv.
func cachedImageHook(t *testing.T, r *rig, kit *harness.Env, pluginEnv map[string]string) string {
	t.Helper()
	dockerfile := fmt.Sprintf(cacheDockerfile, kit.BaseImage)
	packageJSON := `{"name": "app", "dependencies": {"left-pad": "1.3.0"}}`
	hook(t, r.hooks, "pre-command", fmt.Sprintf(`set -euo pipefail
printf '%%s' %s > Dockerfile
printf '%%s' %s > package.json
dockhand cached-image
`, singleQuote(dockerfile), singleQuote(packageJSON)))
	same := t.TempDir()
	writeFile(t, filepath.Join(same, "Dockerfile"), dockerfile)
	writeFile(t, filepath.Join(same, "package.json"), packageJSON)
	var scriptEnv []string
	for k, v := range pluginEnv {
		scriptEnv = append(scriptEnv, k+"="+v)
	}
	return pluginScriptTag(t, same, scriptEnv)
}

// TestCachedImageInAJobOnECR runs `dockhand cached-image` in a job's
// pre-command hook through the real agent, with the job's builder (a remote
// buildkitd chosen by dockhand bootstrap), its credential helper (the kit's
// registry as an ECR alias, tokens from the fake ECR API) and the plugin's
// variables as a pipeline would set them. The first job creates the
// repository with its tags and lifecycle policy, builds and pushes both
// tags; the command and the post-command hook see the exported image. The
// second job builds nothing and exports the same image.
func TestCachedImageInAJobOnECR(t *testing.T) {
	t.Parallel()
	const password = "ecr-token-for-the-cached-image"
	harness.NoSecretInCmdlines(t, password, awsSecret)
	kit := harness.Start(t, harness.Options{RegistryUser: "AWS", RegistryPassword: password})
	fake := startECR(t, password, func(string, string) string { return kit.Registry.Host })
	proxy, calls := recordingProxy(t, fake.URL)
	r := newRig(t)
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"remote\"]\n[remote]\nendpoints = [%q]\n[registry]\necr_aliases = [%q]\n",
		r.state, kit.Buildkitd.Addr, kit.Registry.Host+"="+ecrHost))
	hook(t, r.hooks, "post-command", `echo "post-command sees image=$BUILDKITE_PLUGIN_DOCKER_IMAGE tag=$BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_EXPORT_TAG"
`)
	const p = cachedimage.EnvPrefix
	pluginEnv := map[string]string{
		p + "CACHE_ON_0": "package.json", p + "BUILD_ARGS_0": "STAGE=ci", p + "ECR_TAGS_TEAM": "ci",
		p + "MAX_AGE_DAYS": "7", p + "REGION": "us-east-1",
	}
	env := awsEnv(fake, r.tempDir())
	env["AWS_ENDPOINT_URL_ECR"] = proxy
	for k, v := range pluginEnv {
		env[k] = v
	}

	tag := cachedImageHook(t, r, kit, pluginEnv)
	image := kit.Registry.Host + "/build-cache/org/pipeline"
	const command = `echo "command sees image=$BUILDKITE_PLUGIN_DOCKER_IMAGE"`

	id, agent := r.start(command, env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("first job: exit_status %q\n%s", f.ExitStatus, log)
	}
	for _, want := range []string{
		"command sees image=" + image + ":" + tag,
		"post-command sees image=" + image + ":" + tag + " tag=" + tag,
		"is not in the registry: building it",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("first job's log lacks %q:\n%s", want, log)
		}
	}
	for _, tg := range []string{tag, "latest"} {
		if code := authedManifestStatus(t, kit.Registry.Host, "AWS", password, "build-cache/org/pipeline", tg); code != http.StatusOK {
			t.Errorf("%s:%s: HTTP %d, want 200", image, tg, code)
		}
	}
	repo, ok := fake.Repository("123456789012", "us-east-1", "build-cache/org/pipeline")
	if !ok || !strings.Contains(repo.LifecyclePolicy, `"countNumber":7`) || !strings.Contains(repo.LifecyclePolicy, `"countType":"sinceImagePushed"`) {
		t.Errorf("repository %+v (found %v): want the 7-day lifecycle policy", repo, ok)
	}
	var created string
	for _, c := range calls() {
		if strings.Contains(c, "CreateRepository") {
			created = c
		}
	}
	if !strings.Contains(created, `"repositoryName":"build-cache/org/pipeline"`) || !strings.Contains(created, `{"Key":"TEAM","Value":"ci"}`) {
		t.Errorf("CreateRepository call %q: want the repository with its ecr-tags", created)
	}
	afterFirst := buildRecords(t, kit)

	id, agent = r.start(command, env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("second job: exit_status %q\n%s", f.ExitStatus, log)
	}
	if !strings.Contains(log, "is in the registry: nothing to build") || !strings.Contains(log, "command sees image="+image+":"+tag) {
		t.Errorf("second job did not reuse and export the image:\n%s", log)
	}
	if n := buildRecords(t, kit); n != afterFirst {
		t.Errorf("build records after the second job: %d, want %d (no solve)", n, afterFirst)
	}
	if n, m := fake.Calls(ecrapi.OpCreateRepository), fake.Calls(ecrapi.OpPutLifecyclePolicy); n != 1 || m != 2 {
		t.Errorf("CreateRepository calls %d (want 1), PutLifecyclePolicy calls %d (want 2: every run, as the plugin)", n, m)
	}
	if strings.Contains(log, password) {
		t.Errorf("the registry token appears in the job log")
	}
}

// TestCachedImageOnTheEngine: a job on a host whose builder is the docker
// engine's own (a real engine, dockhand's built-in defaults) runs `dockhand
// cached-image` from its pre-command hook. The engine builds the image
// through the job's buildx (the image is in the engine afterwards and the
// kit's buildkitd records no build), :TAG and :latest are pushed, the command
// sees the image; the second job finds it and builds nothing.
func TestCachedImageOnTheEngine(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	const p = cachedimage.EnvPrefix
	pluginEnv := map[string]string{
		p + "REGISTRY_PROVIDER": "gcr", p + "GCP_PROJECT": "proj", p + "REGISTRY_HOSTNAME": kit.Registry.Host,
		p + "CACHE_ON_0": "package.json",
	}
	env := map[string]string{"DOCKER_HOST": engine.Host}
	for k, v := range pluginEnv {
		env[k] = v
	}
	tag := cachedImageHook(t, r, kit, pluginEnv)
	const repo = "proj/build-cache/org/pipeline"
	image := kit.Registry.Host + "/" + repo
	const command = `echo "command sees image=$BUILDKITE_PLUGIN_DOCKER_IMAGE"`
	before := buildRecords(t, kit)

	id, agent := r.start(command, env)
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" {
		t.Fatalf("first job: exit_status %q\n%s", f.ExitStatus, log)
	}
	for _, want := range []string{"as without dockhand", "is not in the registry: building it", "command sees image=" + image + ":" + tag} {
		if !strings.Contains(log, want) {
			t.Errorf("first job's log lacks %q:\n%s", want, log)
		}
	}
	if !regexp.MustCompile(`(?m)^#\d+ \[\d/\d\] RUN echo deps-installed`).MatchString(log) {
		t.Errorf("no plain build progress for the RUN step:\n%s", log)
	}
	for _, tg := range []string{tag, "latest"} {
		if code := manifestStatus(t, kit.Registry.Host, repo, tg); code != http.StatusOK {
			t.Errorf("%s:%s: HTTP %d, want 200", image, tg, code)
		}
	}
	inspect := kit.Command(t.TempDir(), []string{"DOCKER_HOST=" + engine.Host, "DOCKER_CONFIG=" + r.userDir},
		"docker", "image", "inspect", "--format", "{{.Id}}", image+":"+tag)
	if out, err := inspect.CombinedOutput(); err != nil {
		t.Errorf("%s:%s is not in the engine, which should have built it: %v\n%s", image, tag, err, out)
	}
	if n := buildRecords(t, kit); n != before {
		t.Errorf("the kit's buildkitd recorded %d builds, want %d: the engine should have built", n, before)
	}

	id, agent = r.start(command, env)
	f, log = r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "is in the registry: nothing to build") ||
		!strings.Contains(log, "command sees image="+image+":"+tag) {
		t.Errorf("second job (exit %s) did not reuse and export the image:\n%s", f.ExitStatus, log)
	}
}
