package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/jobstate"
	"github.com/dockhand-ci/dockhand/test/harness"
)

func TestParseBakePrint(t *testing.T) {
	// As buildx v0.38 prints it: cache entries are objects, absent fields
	// are omitted.
	out := []byte(`{
  "group": {"default": {"targets": ["app", "test", "lint"]}},
  "target": {
    "test": {"context": ".", "dockerfile": "Dockerfile", "target": "test", "platforms": ["linux/amd64"],
             "cache-from": [{"type": "registry", "ref": "r/c:x"}]},
    "app": {"context": "svc", "dockerfile": "app.Dockerfile", "no-cache": true},
    "lint": {"context": ".", "dockerfile-inline": "FROM scratch\n", "call": "check", "cache-to": []}
  }
}`)
	got, err := ParseBakePrint(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []BakeTarget{
		{Name: "app", Context: "svc", Dockerfile: "app.Dockerfile", NoCache: true},
		{Name: "lint", Context: ".", DockerfileInline: true, Call: "check"},
		{Name: "test", Context: ".", Dockerfile: "Dockerfile", Target: "test", Platforms: []string{"linux/amd64"}, HasCacheFrom: true},
	}
	if !slices.EqualFunc(got, want, func(a, b BakeTarget) bool {
		return a.Name == b.Name && a.Context == b.Context && a.Dockerfile == b.Dockerfile && a.DockerfileInline == b.DockerfileInline &&
			a.Target == b.Target && slices.Equal(a.Platforms, b.Platforms) && a.HasCacheFrom == b.HasCacheFrom &&
			a.HasCacheTo == b.HasCacheTo && a.Call == b.Call && a.NoCache == b.NoCache
	}) {
		t.Errorf("ParseBakePrint =\n %+v\nwant\n %+v", got, want)
	}
	if _, err := ParseBakePrint([]byte("#1 reading docker-bake.hcl")); err == nil {
		t.Errorf("ParseBakePrint accepted progress output")
	}
}

// The real buildx's `bake --print`, through ResolveBake.
func TestResolveBakeWithRealBuildx(t *testing.T) {
	bin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(bin, "docker-buildx")
	if _, err := os.Stat(real); err != nil {
		t.Fatalf("%v (run make tools)", err)
	}
	dir := t.TempDir()
	hcl := `group "default" { targets = ["app", "test"] }
target "app" { context = "svc" }
target "test" {
  target = "test"
  cache-from = ["type=registry,ref=r/c:t"]
}
`
	if err := os.WriteFile(filepath.Join(dir, "docker-bake.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	env := []string{"HOME=" + dir, "DOCKER_CONFIG=" + filepath.Join(dir, "dc"), "PATH=/usr/bin:/bin", "DOCKER_CLI_PLUGIN_SOCKET=@nowhere"}
	args := []string{"bake", "--set", "app.platform=linux/arm64"}
	targets, err := ResolveBake(t.Context(), real, args, 0, env, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 || targets[0].Name != "app" || targets[1].Name != "test" {
		t.Fatalf("targets = %+v, want app and test", targets)
	}
	if app := targets[0]; app.Context != "svc" || app.Dockerfile != "Dockerfile" || !slices.Equal(app.Platforms, []string{"linux/arm64"}) || app.HasCacheFrom {
		t.Errorf("app = %+v", app)
	}
	if test := targets[1]; test.Target != "test" || !test.HasCacheFrom || test.HasCacheTo {
		t.Errorf("test = %+v", test)
	}
	if _, err := ResolveBake(t.Context(), real, []string{"bake", "nosuchtarget"}, 0, env, nil, time.Minute); err == nil || !strings.Contains(err.Error(), "nosuchtarget") {
		t.Errorf("ResolveBake of a missing target: %v, want buildx's error", err)
	}
	// A definition on stdin, as docker compose gives it (JSON, absolute
	// contexts), beside the file in the working dir.
	stdin := []byte(`{"group": {"default": {"targets": ["web"]}}, "target": {"web": {"context": "/src/web", "dockerfile": "Dockerfile", "tags": ["c-web"]}}}`)
	targets, err = ResolveBake(t.Context(), real, []string{"bake", "--file", "-", "--progress", "rawjson", "--metadata-file", filepath.Join(dir, "m.json")}, 0, env, stdin, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 1 || targets[0].Name != "web" || targets[0].Context != "/src/web" || targets[0].Dockerfile != "Dockerfile" {
		t.Errorf("targets of the definition on stdin = %+v, want web in /src/web", targets)
	}
}

// replayInput reads the whole input and leaves the same bytes to read on the
// same fd, from the start, for the process the shim execs next.
func TestReplayInput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := bytes.Repeat([]byte(`{"target":{"app":{"context":"/x"}}}`+"\n"), 5000) // more than a pipe holds
	go func() {
		w.Write(want)
		w.Close()
	}()
	got, err := replayInput(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("replayInput read %d bytes, want %d", len(got), len(want))
	}
	again, err := io.ReadAll(r) // the same fd, now the in-memory copy
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, want) {
		t.Errorf("the fd holds %d bytes after replayInput, want the %d read", len(again), len(want))
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Errorf("the fd is not the in-memory file (mode %o, %v)", st.Mode, err)
	}
}

// replayInput's fd stays open after the garbage collector has run: the
// file it read through must not be one whose finalizer closes the fd (the
// shim's stdin) before the real plugin is exec'ed with it.
func TestReplayInputSurvivesGC(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		w.Write([]byte("target \"app\" {}\n"))
		w.Close()
	}()
	if _, err := replayInput(int(r.Fd())); err != nil {
		t.Fatal(err)
	}
	// Several collections, each waited for until its finalizers have run.
	for range 3 {
		ran := make(chan struct{})
		sentinel := new([64]byte)
		runtime.SetFinalizer(sentinel, func(*[64]byte) { close(ran) })
		sentinel = nil
		runtime.GC()
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("no finalizer ran within 10s of runtime.GC")
		}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(r.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		t.Fatalf("after a GC the fd is not the in-memory copy of the input (mode %o, %v)", st.Mode, err)
	}
}

func TestBuilderFacts(t *testing.T) {
	dc := t.TempDir()
	store := filepath.Join(dc, "buildx")
	os.MkdirAll(filepath.Join(store, "instances"), 0o700)
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(store, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("instances/kit", `{"Name":"kit","Driver":"remote","Nodes":[{"Name":"kit0","Endpoint":"tcp://10.0.0.1:1234"}]}`)
	write("instances/multi", `{"Name":"multi","Driver":"remote","Nodes":[{"Name":"a"},{"Name":"b"}]}`)
	write("instances/dc", `{"Name":"dc","Driver":"docker-container","Nodes":[{"Name":"dc0"}]}`)
	vars := func(kv ...string) func(string) string {
		return proc.LookupIn(append([]string{"DOCKER_CONFIG=" + dc}, kv...))
	}
	remote := &jobstate.Builder{Kind: config.BuilderRemote, Name: "kit", Nodes: 1}
	for _, c := range []struct {
		name     string
		builder  string
		lookup   func(string) string
		selected *jobstate.Builder
		want     BuilderFacts
	}{
		{"named instance", "kit", vars(), nil, BuilderFacts{Name: "kit", Driver: "remote", Nodes: 1}},
		{"name is case-insensitive", "KIT", vars(), nil, BuilderFacts{Name: "KIT", Driver: "remote", Nodes: 1}},
		{"BUILDX_BUILDER", "", vars("BUILDX_BUILDER=dc"), nil, BuilderFacts{Name: "dc", Driver: "docker-container", Nodes: 1}},
		{"--builder beats BUILDX_BUILDER", "multi", vars("BUILDX_BUILDER=dc"), nil, BuilderFacts{Name: "multi", Driver: "remote", Nodes: 2}},
		{"a docker context", "default", vars(), nil, BuilderFacts{Name: "default", Driver: "docker"}},
		{"nothing named: the docker driver", "", vars(), nil, BuilderFacts{Name: "default", Driver: "docker"}},
		{"BUILDX_CONFIG", "kit", proc.LookupIn([]string{"BUILDX_CONFIG=" + store}), nil, BuilderFacts{Name: "kit", Driver: "remote", Nodes: 1}},
		{"dockhand's single remote node is persistent", "kit", vars(), remote, BuilderFacts{Name: "kit", Driver: "remote", Nodes: 1, Persistent: true}},
		{"another builder than dockhand's is the step's own", "dc", vars(), remote, BuilderFacts{Name: "dc", Driver: "docker-container", Nodes: 1, StepOwn: true}},
		{"the engine's builder when dockhand chose a remote one", "default", vars(), remote, BuilderFacts{Name: "default", Driver: "docker", StepOwn: true}},
		{"nsc-remote is dockhand's Namespace builder too", "nsc-remote", vars(), &jobstate.Builder{Kind: config.BuilderNamespace, Name: buildx.NamespaceName, Nodes: 1}, BuilderFacts{Name: "nsc-remote", Driver: "docker", Persistent: true}},
		{"namespace is persistent", "kit", vars(), &jobstate.Builder{Kind: config.BuilderNamespace, Name: "kit", Nodes: 1}, BuilderFacts{Name: "kit", Driver: "remote", Nodes: 1, Persistent: true}},
		{"multi-node remote is not", "multi", vars(), &jobstate.Builder{Kind: config.BuilderRemote, Name: "multi", Nodes: 2}, BuilderFacts{Name: "multi", Driver: "remote", Nodes: 2}},
		{"embedded is not", "kit", vars(), &jobstate.Builder{Kind: config.BuilderEmbedded, Name: "kit", Nodes: 1}, BuilderFacts{Name: "kit", Driver: "remote", Nodes: 1}},
		{"local is not", "kit", vars(), &jobstate.Builder{Kind: config.BuilderLocal, Name: "kit", Nodes: 1}, BuilderFacts{Name: "kit", Driver: "remote", Nodes: 1}},
	} {
		if got := builderFacts(c.builder, c.lookup, c.selected); got != c.want {
			t.Errorf("%s: builderFacts(%q) = %+v, want %+v", c.name, c.builder, got, c.want)
		}
	}
	write("current", `{"Key":"unix:///var/run/docker.sock","Name":"multi","Global":false}`)
	if got := builderFacts("", vars(), nil); got.Name != "multi" || got.Nodes != 2 {
		t.Errorf("with a current builder: %+v, want multi", got)
	}
	// buildx files a current builder under the docker endpoint it was chosen
	// on: on another endpoint it is not the one buildx runs on.
	if got := builderFacts("", vars("DOCKER_HOST=tcp://10.0.0.9:2375"), nil); got.Name != "default" || got.Driver != buildx.DriverDocker {
		t.Errorf("another endpoint's current builder: %+v, want the context's own (default, docker)", got)
	}
}

func testJob() *jobstate.State {
	return &jobstate.State{Cache: &jobstate.CacheSettings{
		Mode:     config.CacheAuto,
		Backend:  cachekey.Backend{Kind: config.CacheRegistry, Repository: "reg.example/cache"},
		Identity: cachekey.Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main"},
	}}
}

func TestShimRewriteEnvironment(t *testing.T) {
	args := []string{"buildx", "build", "."}
	base := []string{"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker", "DOCKER_CONFIG=" + t.TempDir()}
	for _, c := range []struct {
		name    string
		env     []string
		args    []string
		changed bool
		err     error
		stderr  string
	}{
		{"injects", nil, args, true, nil, "dockhand: cache "},
		{"DOCKHAND_CACHE=off", []string{"DOCKHAND_CACHE=off"}, args, false, nil, ""},
		{"DOCKHAND_CACHE=off with debug", []string{"DOCKHAND_CACHE=off", "DOCKHAND_DEBUG=1"}, args, false, nil, "dockhand: cache not injected: cache.mode is off"},
		{"bad DOCKHAND_CACHE", []string{"DOCKHAND_CACHE=sometimes"}, args, true, nil,
			`dockhand: warning: ignoring DOCKHAND_CACHE="sometimes" from the job environment: cache.mode: "sometimes" is not one of auto, always, off` + "\n"},
		{"bad DOCKHAND_STRICT is said, not strict", []string{"DOCKHAND_STRICT=maybe"}, []string{"buildx", "build", "--frob", "."}, false, nil,
			`dockhand: warning: ignoring DOCKHAND_STRICT="maybe" from the job environment: strict: "maybe" is not a boolean (want true or false)` + "\n"},
		{"unknown flag warns", nil, []string{"buildx", "build", "--frob", "."}, false, nil, "dockhand: cache not injected: unknown flag --frob\n"},
		{"strict fails", []string{"DOCKHAND_STRICT=1"}, []string{"buildx", "build", "--frob", "."}, false, ErrStrict, "dockhand: cache not injected: unknown flag --frob\n"},
		{"strict=false", []string{"DOCKHAND_STRICT=false"}, []string{"buildx", "build", "--frob", "."}, false, nil, "unknown flag --frob"},
		{"standalone", []string{"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND="}, []string{"build", "."}, true, nil, "dockhand: cache "},
		{"pass-through is silent", nil, []string{"buildx", "ls"}, false, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			environ := append(slices.Clone(base), c.env...)
			res, err := testRewrite(t, c.args, environ, &stderr)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if res.Changed != c.changed {
				t.Errorf("Changed = %v, want %v (%s)", res.Changed, c.changed, res.Reason)
			}
			if c.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr = %q, want %q", stderr.String(), c.stderr)
			}
			if strings.Count(stderr.String(), "cache not injected") > 1 {
				t.Errorf("more than one line: %q", stderr.String())
			}
		})
	}
}

func TestReport(t *testing.T) {
	p := testPolicy()
	p.Identity.PullRequest, p.Identity.PullRequestRepo = "4", "https://github.com/mallory/web"
	res := Rewrite([]string{"buildx", "build", "."}, p)
	var b bytes.Buffer
	Report(joblog.New(&b), res, false)
	k := dockerfile.Key()
	want := "dockhand: cache " + k + " (Dockerfile Dockerfile, context .): from reg.example/cache/web:" + k + "-pr-4, reg.example/cache/web:" +
		k + "-dev, reg.example/cache/web:" + k + "-main; read-only (a pull request from a fork)\n"
	if b.String() != want {
		t.Errorf("Report =\n %q\nwant\n %q", b.String(), want)
	}
}

// With `--progress rawjson` (how docker compose runs bake) stderr is a stream
// of BuildKit progress records: the shim's lines are records too, each a
// finished step named by the line, and nothing else is written there. Other
// progress modes keep the plain lines.
func TestShimLinesInRawJSONProgress(t *testing.T) {
	base := []string{"DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND=docker", "DOCKER_CONFIG=" + t.TempDir()}
	for _, c := range []struct {
		name  string
		env   []string
		args  []string
		json  bool
		lines int
	}{
		{"--progress rawjson", nil, []string{"buildx", "build", "--progress", "rawjson", "."}, true, 1},
		{"--progress=rawjson, with a warning", []string{"DOCKHAND_CACHE=sometimes"}, []string{"buildx", "build", "--progress=rawjson", "."}, true, 2},
		{"BUILDKIT_PROGRESS=rawjson", []string{"BUILDKIT_PROGRESS=rawjson"}, []string{"buildx", "build", "."}, true, 1},
		{"--progress plain over BUILDKIT_PROGRESS=rawjson", []string{"BUILDKIT_PROGRESS=rawjson"}, []string{"buildx", "build", "--progress", "plain", "."}, false, 1},
		{"default progress", nil, []string{"buildx", "build", "."}, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			environ := append(slices.Clone(base), c.env...)
			if _, err := testRewrite(t, c.args, environ, &stderr); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != c.lines {
				t.Fatalf("stderr = %q, want %d line(s)", stderr.String(), c.lines)
			}
			for _, l := range lines {
				var rec struct {
					Vertexes []struct {
						Digest, Name       string
						Started, Completed *time.Time
					}
				}
				err := json.Unmarshal([]byte(l), &rec)
				if !c.json {
					if err == nil || !strings.HasPrefix(l, "dockhand: ") {
						t.Errorf("line %q: want plain text", l)
					}
					continue
				}
				if err != nil || len(rec.Vertexes) != 1 {
					t.Fatalf("line %q is not one progress record: %v", l, err)
				}
				v := rec.Vertexes[0]
				if !strings.HasPrefix(v.Name, "dockhand: ") || !strings.HasPrefix(v.Digest, "sha256:") || v.Started == nil || v.Completed == nil {
					t.Errorf("record %+v: want a finished step named by the shim's line", v)
				}
			}
			if c.json && !strings.Contains(stderr.String(), `"name":"dockhand: cache `) {
				t.Errorf("no record of the injection: %q", stderr.String())
			}
		})
	}
}

// A `docker build` (docker passes its command path to the plugin) runs on
// dockhand's builder whatever the step made current, as without dockhand it
// runs on the context's own; everything else is left to buildx's rule.
func TestDockerBuildBuilder(t *testing.T) {
	const forwarded = "OTEL_RESOURCE_ATTRIBUTES=service.name=ci,docker.cli.cobra.command_path=docker"
	remote := &jobstate.State{Builder: jobstate.Builder{Kind: config.BuilderRemote, Name: buildx.RemoteName, Nodes: 1}}
	build := []string{"buildx", "build", "-t", "x", "."}
	for _, c := range []struct {
		name string
		args []string
		env  []string
		job  *jobstate.State
		want string
	}{
		{"docker build", build, []string{forwarded}, remote, buildx.RemoteName},
		{"docker image build", build, []string{"OTEL_RESOURCE_ATTRIBUTES=docker.cli.cobra.command_path=docker%20image"}, remote, buildx.RemoteName},
		{"docker buildx build: the current builder", build, []string{"OTEL_RESOURCE_ATTRIBUTES=docker.cli.cobra.command_path=docker%20buildx"}, remote, ""},
		{"an older docker that says nothing", build, nil, remote, ""},
		{"docker build --builder", []string{"buildx", "build", "--builder", "mine", "."}, []string{forwarded}, remote, ""},
		{"BUILDX_BUILDER set", build, []string{forwarded, "BUILDX_BUILDER=mine"}, remote, ""},
		{"docker builder prune", []string{"buildx", "prune", "-f"}, []string{"OTEL_RESOURCE_ATTRIBUTES=docker.cli.cobra.command_path=docker%20builder"}, remote, ""},
		{"the local kind: docker picks the engine itself", build, []string{forwarded}, &jobstate.State{Builder: jobstate.Builder{Kind: config.BuilderLocal, Name: "default"}}, ""},
		{"no builder chosen", build, []string{forwarded}, &jobstate.State{}, ""},
		{"outside a job", build, []string{forwarded}, nil, ""},
	} {
		if got := dockerBuildBuilder(c.args, proc.LookupIn(c.env), c.job); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// testRewrite runs shimRewrite for testJob as the shim would.
func testRewrite(t *testing.T, args, environ []string, stderr io.Writer) (Result, error) {
	job := testJob()
	settings, warnings := shimSettings(job, proc.LookupIn(environ))
	return shimRewrite(t.Context(), args, proc.LookupIn(environ), "/nonexistent/docker-buildx", environ, job, settings, warnings, stderr)
}
