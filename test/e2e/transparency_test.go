package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/test/harness"
)

// The transparency corpus: everyday steps of pipelines nobody will rewrite,
// each run through the real agent twice on the same real docker engine —
// once with the plain `buildkite-agent bootstrap` and `/bin/bash -e -c`, once
// with dockhand — comparing the exit status and the step's own result lines
// (those it prints as "out: …"). A difference is a failure.

// corpusRow is one everyday step. Its command (or, for what Buildkite plugins
// run from their `command` hook, which does not go through the job's shell,
// its hook) sees T (a tag unique to the run), CTX (the build contexts), REG
// (a plain registry), AREG and APASS (a registry with a login), BASE (the
// busybox base image) and O, the "out: " prefix (kept out of the command's
// text, which the agent echoes).
type corpusRow struct {
	name    string
	command string
	hook    string // a global `command` hook body instead of the command
	// engineOnly: the step needs the engine's own builder (a FROM naming an
	// image that exists only in the engine), so it runs on the local kind.
	engineOnly bool
	// builds: the step builds with buildx or compose, so it also runs with
	// their other versions on every kind (corpusVersions).
	builds bool
}

var corpus = []corpusRow{
	{name: "build then run", builds: true, command: `docker build -t app-$T "$CTX/app"
docker run --rm app-$T cat /hi | sed "s/^/$O/"`},
	{name: "build FROM an image built earlier in the step", builds: true, engineOnly: true, command: `docker build -t base-$T "$CTX/base"
docker build --build-arg BASE=base-$T -t from-$T "$CTX/from"
docker run --rm from-$T cat /base /app | sed "s/^/$O/"`},
	{name: "build then push", builds: true, command: `docker build -t $REG/push:$T "$CTX/app"
docker push $REG/push:$T >/dev/null
docker rmi $REG/push:$T >/dev/null
docker run --rm $REG/push:$T cat /hi | sed "s/^/$O/"`},
	{name: "buildx build --load then run", builds: true, command: `docker buildx build --load -t load-$T "$CTX/app"
docker run --rm load-$T cat /hi | sed "s/^/$O/"`},
	{name: "buildx bake", builds: true, command: `cd "$CTX/bake"
docker buildx bake --load
docker run --rm bake-$T cat /hi | sed "s/^/$O/"`},
	{name: "compose build and run", builds: true, command: `cd "$CTX/compose"
docker compose -p c$T build
docker compose -p c$T run --rm app cat /hi | sed "s/^/$O/"`},
	{name: "docker-compose plugin's commands from a command hook", builds: true, hook: `set -e
cd "$CTX/compose"
docker compose -f compose.yaml -p h$T build app
docker compose -f compose.yaml -p h$T run --rm app cat /hi | sed "s/^/$O/"`},
	{name: "docker plugin's run from a command hook", hook: `set -e
docker run --rm -e GREETING=from-the-plugin $BASE sh -c "echo $O\$GREETING"`},
	{name: "docker login then push", builds: true, command: `echo "$APASS" | docker login $AREG -u user --password-stdin >/dev/null
docker build -t $AREG/login:$T "$CTX/app"
docker push $AREG/login:$T >/dev/null
docker rmi $AREG/login:$T >/dev/null
docker run --rm $AREG/login:$T cat /hi | sed "s/^/$O/"
docker logout $AREG >/dev/null`},
	{name: "the job's docker config read by a docker CLI without dockhand's helper", command: `echo "$APASS" | docker login $AREG -u user --password-stdin >/dev/null
d=$(command -v docker)
bare() { env -i PATH=/nonexistent HOME="$HOME" DOCKER_CONFIG="$DOCKER_CONFIG" DOCKER_HOST="$DOCKER_HOST" "$d" "$@"; }
bare pull $BASE >/dev/null && echo "${O}public pull"
bare tag $BASE $AREG/bare:$T
bare push $AREG/bare:$T >/dev/null && echo "${O}logged-in push"
docker logout $AREG >/dev/null`},
	{name: "a failing build fails the step", builds: true, command: `echo "${O}before"
docker build -t fail-$T "$CTX/fail"
echo "${O}not reached"`},
}

// corpusKind is a builder kind the corpus runs on, as a dockhand.toml.
type corpusKind struct {
	name   string
	config string // after state_dir
	engine bool   // the engine's own builder
}

// writeCorpusContexts writes the build contexts the rows use.
func writeCorpusContexts(t *testing.T, dir, base string) {
	t.Helper()
	files := map[string]string{
		"app/Dockerfile":  "FROM " + base + "\nRUN echo hi > /hi\n",
		"base/Dockerfile": "FROM " + base + "\nRUN echo base > /base\n",
		"from/Dockerfile": "ARG BASE\nFROM ${BASE}\nRUN echo app > /app\n",
		"fail/Dockerfile": "FROM " + base + "\nRUN exit 7\n",
		"bake/Dockerfile": "FROM " + base + "\nRUN echo hi > /hi\n",
		"bake/docker-bake.hcl": `variable "T" {}
target "default" {
  tags = ["bake-${T}"]
}
`,
		"compose/Dockerfile": "FROM " + base + "\nRUN echo hi > /hi\n",
		"compose/compose.yaml": `services:
  app:
    build: .
    image: compose-app:${T}
    network_mode: none
`,
	}
	for name, body := range files {
		writeFile(t, filepath.Join(dir, name), body)
	}
}

// outLines are the step's own result lines of a job log, in order.
func outLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, "out: "); i >= 0 {
			out = append(out, strings.TrimSpace(l[i:]))
		}
	}
	return out
}

// corpusVersions are the component versions the corpus runs with. With the
// current ones every row runs on every kind. With the Elastic CI Stack's
// (agent 3.137.0, buildx 0.34.1, compose 5.1.4, harness.Stack) every row
// runs on the built-in defaults (the stack's own setup: the agent's version
// shows in every job, hooks included), and the rows that build also run on
// embedded (buildx 0.34.1 reading the builder dockhand writes, its
// default-load; compose v5's bake through the shim). remote is left out
// there: its builder is the same kind of buildx instance as embedded's, and
// the run stays within a few minutes.
//
// The current versions run on every engine the kit has (harness.EngineVariants);
// the stack's run on the stack's engine: the current one with the classic
// store (Docker 25+ on AL2023, storage-driver overlay2).
var corpusVersions = []struct {
	versions harness.Versions
	kinds    []string // "" for every kind
	engines  []harness.EngineVariant
}{
	{versions: harness.Versions{}, engines: harness.EngineVariants()},
	{versions: harness.Stack, kinds: []string{"local (built-in defaults)", "embedded"}, engines: []harness.EngineVariant{harness.EngineCurrent}},
}

// TestTransparencyCorpus runs every row on the engine's own builder (the
// built-in defaults) and on each BuildKit kind, plain and with dockhand,
// with each set of corpusVersions, on its engines: Debian's 20.10 and the
// current engine with the classic store, userns-remap, the data root on its
// own mount and the containerd image store.
//
// Each engine's rows run in a subtest of their own, in parallel with the
// others under the harness's limiter: a kit, a rig and an engine each.
func TestTransparencyCorpus(t *testing.T) {
	t.Parallel()
	for _, v := range corpusVersions {
		t.Run(v.versions.String(), func(t *testing.T) {
			t.Parallel()
			for _, engine := range v.engines {
				t.Run(engine.Name, func(t *testing.T) {
					t.Parallel()
					runTransparencyCorpus(t, v.versions, engine, func(kind corpusKind, row corpusRow) bool {
						if len(v.kinds) == 0 {
							return true
						}
						return slices.Contains(v.kinds, kind.name) && (kind.engine || row.builds)
					})
				})
			}
		})
	}
}

// runTransparencyCorpus runs the rows picked, on the kinds picked, with the
// components of versions, on engine v.
func runTransparencyCorpus(t *testing.T, versions harness.Versions, v harness.EngineVariant, pick func(corpusKind, corpusRow) bool) {
	kit := harness.Start(t, harness.Options{})
	authReg, err := kit.StartRegistry(harness.RegistryOptions{Name: "auth-registry", User: "user", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	// The agent runs as the stack's user (uid 2000) for every kind, as on
	// the stack (embedded's buildkitd then runs rootless).
	r := newRig(t)
	r.shortState()
	r.useVersions(versions)
	ctxDir := r.tempDir()
	writeCorpusContexts(t, ctxDir, kit.BaseImage)
	bkConfig := filepath.Join(r.tempDir(), "buildkitd.toml")
	writeFile(t, bkConfig, fmt.Sprintf("[worker.oci]\n  gc = false\n[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n[registry.%q]\n  http = true\n", kit.Registry.Host, authReg.Host))
	kinds := []corpusKind{
		{name: "local (built-in defaults)", engine: true},
		{name: "remote", config: fmt.Sprintf("builders = [\"remote\"]\n[remote]\nendpoints = [%q]\n", kit.Buildkitd.Addr)},
		{name: "embedded", config: fmt.Sprintf("builders = [\"embedded\"]\n[embedded]\nconfig = %q\n", bkConfig)},
	}
	env := map[string]string{
		"CTX": ctxDir, "REG": kit.Registry.Host, "BASE": kit.BaseImage,
		"AREG": authReg.Host, "APASS": authReg.Password, "O": "out: ",
	}
	engine, err := kit.StartDockerd(harness.DockerdOptions{Name: "dockerd-" + v.Name, Engine: v})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Stop()
	n := 0
	for _, kind := range kinds {
		if !kind.engine && !corpusAllKinds(v) {
			continue
		}
		writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n%s", r.state, kind.config))
		for _, row := range corpus {
			if row.engineOnly && !kind.engine || !pick(kind, row) {
				continue
			}
			t.Run(kind.name+"/"+row.name, func(t *testing.T) {
				var runs [2]corpusRun
				for i, plain := range []bool{true, false} {
					n++
					jobEnv := map[string]string{"T": fmt.Sprintf("t%d%d", time.Now().UnixNano()%1e6, n), "DOCKER_HOST": engine.Host}
					for k, v := range env {
						jobEnv[k] = v
					}
					runs[i] = r.runCorpus(row, plain, jobEnv)
				}
				checkCorpusRuns(t, kind, runs[0], runs[1], authReg.Password)
			})
		}
	}
}

// corpusAllKinds reports whether the corpus runs every builder kind on
// engine v, or only the engine's own builder. Userns-remap and the data root
// on its own mount change how the engine stores and runs what it builds
// itself; a BuildKit kind touches the engine only to load an image and run
// it, which the current engine's classic-store rows cover (every kind passed
// on both in a full run: docs/transparency.md).
func corpusAllKinds(v harness.EngineVariant) bool { return !v.UsernsRemap && !v.DataMount }

// checkCorpusRuns fails t unless the plain and dockhand runs of a row are
// the same, the plain one printed results, the dockhand log holds no
// password and, on the engine's own builder, says so.
func checkCorpusRuns(t *testing.T, kind corpusKind, plain, dh corpusRun, password string) {
	t.Helper()
	sameRuns(t, plain, dh, "")
	if len(plain.out) == 0 {
		t.Errorf("the plain run printed no result line (exit %s):\n%s", plain.status, plain.log)
	}
	if strings.Contains(dh.log, password) {
		t.Errorf("the registry password is in the dockhand job log")
	}
	if kind.engine && !strings.Contains(dh.log, "as without dockhand") {
		t.Errorf("the dockhand log does not say the engine's own builder is used:\n%s", section(dh.log))
	}
}

// sameRuns fails t unless the plain and dockhand runs ended alike and
// printed the same result lines (and, when status is set, ended with it).
func sameRuns(t *testing.T, plain, dh corpusRun, status string) {
	t.Helper()
	if (status != "" && plain.status != status) || plain.status != dh.status || !slices.Equal(plain.out, dh.out) {
		t.Errorf("plain and dockhand differ:\nplain:    exit %s %q\ndockhand: exit %s %q\n--- dockhand log:\n%s\n--- plain log:\n%s",
			plain.status, plain.out, dh.status, dh.out, dh.log, plain.log)
	}
}

type corpusRun struct {
	status string
	out    []string
	log    string
}

// runCorpus runs one row as one job, plain or through dockhand.
func (r *rig) runCorpus(row corpusRow, plain bool, env map[string]string) corpusRun {
	r.t.Helper()
	command := row.command
	hookPath := filepath.Join(r.hooks, "command")
	if row.hook != "" {
		hook(r.t, r.hooks, "command", row.hook)
		defer os.Remove(hookPath)
		command = "echo the command hook runs instead"
	}
	var id string
	var a *harness.Agent
	if plain {
		id, a = r.startPlain(command, env)
	} else {
		id, a = r.start(command, env)
	}
	f, log := r.finish(id, a)
	return corpusRun{status: f.ExitStatus, out: outLines(log), log: log}
}

var probeLine = regexp.MustCompile(`builder: probe local (\S+): down after `)

// hangingSocket is a unix socket that accepts connections and never answers,
// as a wedged docker engine does.
func hangingSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "docker.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	return path
}

// TestDockerEngineDownOrHanging: a wedged engine is probed within
// probe_timeout; the queue's next kind is chosen, and with the built-in
// defaults (where the engine is the only builder) the job runs as it would
// without dockhand instead of failing with 125.
func TestDockerEngineDownOrHanging(t *testing.T) {
	t.Parallel()
	sock := hangingSocket(t)
	state := filepath.Join(shortDir(t), "state")
	t.Cleanup(func() { stopEmbedded(t, state) })
	config := filepath.Join(t.TempDir(), "dockhand.toml")

	writeFile(t, config, fmt.Sprintf("state_dir = %q\nprobe_timeout = \"1s\"\n", state))
	r := runBootstrap(t, config, "pipe", "echo step-ran", "DOCKER_HOST=unix://"+sock)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "step-ran") {
		t.Fatalf("built-in defaults with a hanging engine: exit %d, want the step to run\n%s", r.code, r.stdout+r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "the docker engine does not answer") || !strings.Contains(r.stdout+r.stderr, "not local:") {
		t.Errorf("the log does not say the engine is down:\n%s", r.stdout+r.stderr)
	}
	if r.took > 20*time.Second {
		t.Errorf("the job took %s with probe_timeout 1s", r.took)
	}

	writeFile(t, config, fmt.Sprintf("state_dir = %q\nprobe_timeout = \"1s\"\nbuilders = [\"local\", \"embedded\"]\n", state))
	r = runBootstrap(t, config, "pipe", "echo step-ran", "DOCKER_HOST=unix://"+sock)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stdout+r.stderr)
	}
	// The choice includes starting the embedded buildkitd; what is bounded
	// here is that the hanging engine cost no more than probe_timeout.
	if !strings.Contains(r.stdout+r.stderr, `builder: embedded "dockhand-embedded"`) || !strings.Contains(r.stdout+r.stderr, "builder: not local:") {
		t.Errorf("want the embedded builder after local, which is down:\n%s", r.stdout+r.stderr)
	}
	if probe := probeLine.FindStringSubmatch(r.stdout + r.stderr); probe == nil || probe[1] != "unix://"+sock {
		t.Errorf("no probe line for the engine:\n%s", r.stdout+r.stderr)
	}
}

// namespaceDocsStep is the step of Namespace's docs (seed 000, "Pushing to a
// Namespace registry"), with nsc at $NSC instead of /usr/local/bin/nsc, the
// tenant and the registry of the test; withSetup false deletes its three
// setup lines and keeps `--builder nsc-remote`.
func namespaceDocsStep(withSetup bool) string {
	setup := `OIDC_TOKEN=$(buildkite-agent oidc request-token --audience federation.namespaceapis.com)
"$NSC" auth exchange-oidc-token \
  --token "$OIDC_TOKEN" \
  --tenant_id tnt_e2e
"$NSC" docker buildx setup --background --use
"$NSC" docker login
`
	build := `cd "$CTX/multi"
docker buildx build \
  --builder nsc-remote \
  --platform linux/amd64,linux/arm64 \
  -t $REG/ns/app:$T \
  --push .
echo "${O}pushed"`
	if !withSetup {
		return build
	}
	return setup + build
}

// TestNamespaceDocsPipelines: the Namespace docs' step runs verbatim under
// dockhand (the fake nsc standing in for Namespace, two real mTLS buildkitd
// for its amd64 and arm64 builders) as it does on the plain stack, and the
// same step without its setup lines runs on dockhand's Namespace builder.
// Building without --builder, the step runs on the builder its own `nsc
// docker buildx setup --use` made current, on both.
func TestNamespaceDocsPipelines(t *testing.T) {
	t.Parallel()
	p := startPool(t, 2)
	nsc := buildFakeNsc(t)
	r := newRig(t)
	backend := filepath.Join(r.tempDir(), "backend.json")
	writeBackend(t, backend, nscBackend{TenantID: "tnt_e2e", Log: filepath.Join(r.tempDir(), "calls.log"), Builders: []nscBuilderDef{
		{Platform: "linux/amd64", Endpoint: p.eps[0], ServerCA: p.fleet.Client.CA, ClientCert: p.fleet.Client.Cert, ClientKey: p.fleet.Client.Key},
		{Platform: "linux/arm64", Endpoint: p.eps[1], ServerCA: p.fleet.Client.CA, ClientCert: p.fleet.Client.Cert, ClientKey: p.fleet.Client.Key},
	}})
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"namespace\"]\n[namespace]\nnsc = %q\ntenant_id = \"tnt_e2e\"\n", r.state, nsc))
	ctxDir := r.tempDir()
	writeFile(t, filepath.Join(ctxDir, "multi", "Dockerfile"), "FROM scratch\nCOPY hi /hi\n")
	writeFile(t, filepath.Join(ctxDir, "multi", "hi"), "hi\n")
	env := func(tag string) map[string]string {
		return map[string]string{"NSC": nsc, "FAKENSC_BACKEND": backend, "CTX": ctxDir, "REG": p.kit.Registry.Host, "T": tag, "O": "out: "}
	}
	row := corpusRow{name: "Namespace docs step", command: namespaceDocsStep(true)}
	plain := r.runCorpus(row, true, env("plain"))
	dh := r.runCorpus(row, false, env("dockhand"))
	sameRuns(t, plain, dh, "0")
	// The same step building without --builder: on the builder its own
	// `nsc docker buildx setup --use` made current, not dockhand's.
	step := strings.Replace(namespaceDocsStep(true), "  --builder nsc-remote \\\n", "", 1)
	step = strings.Replace(step, `cd "$CTX/multi"`, `cd "$CTX/multi"
echo "${O}builder=$(docker buildx inspect | sed -n 's/^Name: *//p' | head -n 1)"`, 1)
	if strings.Contains(step, "--builder") {
		t.Fatalf("the step still names its builder:\n%s", step)
	}
	usePlain := r.runCorpus(corpusRow{command: step}, true, env("useplain"))
	useDh := r.runCorpus(corpusRow{command: step}, false, env("usedockhand"))
	sameRuns(t, usePlain, useDh, "0")
	if want := []string{"out: builder=" + buildx.NamespaceDocsName, "out: pushed"}; !slices.Equal(useDh.out, want) {
		t.Errorf("without --builder, dockhand's run printed %q, want %q\n%s", useDh.out, want, useDh.log)
	}
	without := r.runCorpus(corpusRow{command: namespaceDocsStep(false)}, false, env("nosetup"))
	if without.status != "0" || !slices.Equal(without.out, []string{"out: pushed"}) {
		t.Errorf("the step without its setup lines: exit %s %q\n%s", without.status, without.out, without.log)
	}
	for _, tag := range []string{"plain", "dockhand", "nosetup"} {
		if code := manifestStatus(t, p.kit.Registry.Host, "ns/app", tag); code != 200 {
			t.Errorf("ns/app:%s: HTTP %d, want the pushed image", tag, code)
		}
	}
}

// TestPerPlatformPoolTransparency: on a per-platform pool, a two-platform
// `--push` and a single-platform build then `docker run` behave as on the
// plain stack whose agent user created the same pool as a buildx builder.
func TestPerPlatformPoolTransparency(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*harness.Buildkitd
	for _, platform := range []string{"linux/amd64", "linux/arm64"} {
		b, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "node-" + strings.ReplaceAll(platform, "/", "-"),
			Platforms: []string{platform}, InsecureRegistries: []string{kit.Registry.Host}})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	r := newRig(t)
	writeFile(t, r.config, fmt.Sprintf(`state_dir = %q
builders = ["remote"]
[[remote.platform]]
platform = "linux/amd64"
endpoints = [%q]
[[remote.platform]]
platform = "linux/arm64"
endpoints = [%q]
`, r.state, nodes[0].Addr, nodes[1].Addr))
	// The plain stack's agent user made the same pool once, with default-load
	// as dockhand sets it on a host with an engine.
	userEnv := []string{"DOCKER_CONFIG=" + r.userDir, "DOCKER_HOST=" + engine.Host}
	for _, args := range [][]string{
		{"buildx", "create", "--name", "pool", "--driver", "remote", "--driver-opt", "default-load=true", "--platform", "linux/amd64", nodes[0].Addr},
		{"buildx", "create", "--append", "--name", "pool", "--driver-opt", "default-load=true", "--platform", "linux/arm64", nodes[1].Addr},
		{"buildx", "use", "pool"},
	} {
		if out, err := kit.Command(r.userDir, userEnv, "docker", args...).CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ctxDir := r.tempDir()
	writeCorpusContexts(t, ctxDir, kit.BaseImage)
	writeFile(t, filepath.Join(ctxDir, "multi", "Dockerfile"), "FROM scratch\nCOPY hi /hi\n")
	writeFile(t, filepath.Join(ctxDir, "multi", "hi"), "hi\n")
	rows := []corpusRow{
		{name: "multi-platform push", command: `docker buildx build --platform linux/amd64,linux/arm64 --push -t $REG/multi/app:$T "$CTX/multi"
echo "${O}pushed"`},
		corpus[0], // build then run: one platform, loaded from its node
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var runs [2]corpusRun
			for j, plain := range []bool{true, false} {
				tag := fmt.Sprintf("p%d%d", i, j)
				runs[j] = r.runCorpus(row, plain, map[string]string{"DOCKER_HOST": engine.Host, "CTX": ctxDir,
					"REG": kit.Registry.Host, "BASE": kit.BaseImage, "T": tag, "O": "out: "})
			}
			sameRuns(t, runs[0], runs[1], "0")
		})
	}
	for _, tag := range []string{"p00", "p01"} {
		// buildx's provenance attestations are listed as unknown/unknown.
		got := slices.DeleteFunc(indexPlatforms(t, kit.Registry.Host, "multi/app", tag), func(p string) bool { return p == "unknown/unknown" })
		if !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
			t.Errorf("multi/app:%s platforms = %q, want linux/amd64 and linux/arm64", tag, got)
		}
	}
}

// ownBuilderStep is the S3-cache example of the Elastic stack's docs (seed
// 002) with a remote-driver builder of its own at $OWN instead of a
// docker-container one: the step creates it with --use, builds with a plain
// `docker buildx build`, says which builder buildx chose, runs a plain
// `docker build` (which docker runs on the default builder whatever buildx
// made current) and removes its builder.
const ownBuilderStep = `docker buildx create --name mine --driver remote "$OWN" --use >/dev/null
echo "${O}builder=$(docker buildx inspect | sed -n 's/^Name: *//p' | head -n 1)"
docker buildx build --progress plain --push -t $REG/own:$T "$CTX/app"
echo "${O}built"
docker build -t own-base-$T "$CTX/base" >/dev/null
docker run --rm own-base-$T cat /base | sed "s/^/$O/"
docker buildx rm mine >/dev/null`

// TestTransparencyStepsOwnBuilder: a step that makes its own builder the
// current one (`buildx create --use`) builds there, on every kind, as on the
// plain stack: counted in the build histories of its daemon and of
// dockhand's. Its `docker build` runs where it runs on the plain stack, the
// default builder, which under dockhand is dockhand's. dockhand adds no
// cache flags to the step's own builder (the queue has a cache; cache.mode
// auto).
func TestTransparencyStepsOwnBuilder(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	engine, err := kit.StartDockerd(harness.DockerdOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "own", InsecureRegistries: []string{kit.Registry.Host}})
	if err != nil {
		t.Fatal(err)
	}
	// As the corpus: the agent runs as the stack's user (uid 2000); the
	// embedded daemon's socket lives under the state dir.
	r := newRig(t)
	r.shortState()
	ctxDir := r.tempDir()
	writeCorpusContexts(t, ctxDir, kit.BaseImage)
	bkConfig := filepath.Join(r.tempDir(), "buildkitd.toml")
	writeFile(t, bkConfig, fmt.Sprintf("[worker.oci]\n  gc = false\n[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n", kit.Registry.Host))
	cache := fmt.Sprintf("[cache]\nbackend = \"local\"\n[cache.local]\ndir = %q\n", r.tempDir())
	kinds := []struct {
		corpusKind
		daemon string // dockhand's builder, whose history must not grow
	}{
		{corpusKind{name: "local", config: "builders = [\"local\"]\n", engine: true}, ""},
		{corpusKind{name: "remote", config: fmt.Sprintf("builders = [\"remote\"]\n[remote]\nendpoints = [%q]\n", kit.Buildkitd.Addr)}, kit.Buildkitd.Addr},
		{corpusKind{name: "embedded", config: fmt.Sprintf("builders = [\"embedded\"]\n[embedded]\nconfig = %q\n", bkConfig)}, embedded.Socket(r.state)},
	}
	row := corpusRow{name: "buildx create --use, then buildx build", command: ownBuilderStep}
	for i, kind := range kinds {
		writeFile(t, r.config, fmt.Sprintf("state_dir = %q\n%s%s", r.state, kind.config, cache))
		t.Run(kind.name, func(t *testing.T) {
			var runs [2]corpusRun
			for j, plain := range []bool{true, false} {
				env := map[string]string{"DOCKER_HOST": engine.Host, "OWN": own.Addr, "CTX": ctxDir, "REG": kit.Registry.Host,
					"T": fmt.Sprintf("own%d%d", i, j), "O": "out: "}
				ownBefore := len(historiesAt(t, kit.Kit, own.Addr))
				dhBefore := 0
				if _, err := os.Stat(strings.TrimPrefix(kind.daemon, "unix://")); kind.daemon != "" && err == nil {
					dhBefore = len(historiesAt(t, kit.Kit, kind.daemon)) // the embedded one starts with the first job
				}
				runs[j] = r.runCorpus(row, plain, env)
				if kind.daemon != "" && !plain {
					if n := len(historiesAt(t, kit.Kit, kind.daemon)) - dhBefore; n != 1 {
						t.Errorf("dockhand's builder ran %d builds, want 1 (the docker build; the buildx build is the step's own)\n%s", n, runs[j].log)
					}
				}
				if n := len(historiesAt(t, kit.Kit, own.Addr)) - ownBefore; n != 1 {
					t.Errorf("plain=%v: the step's own builder ran %d builds, want 1\n%s", plain, n, runs[j].log)
				}
			}
			sameRuns(t, runs[0], runs[1], "0")
			if want := []string{"out: builder=mine", "out: built", "out: base"}; !slices.Equal(runs[1].out, want) {
				t.Errorf("dockhand run printed %q, want %q", runs[1].out, want)
			}
			if regexp.MustCompile(`dockhand: cache \S+ \(.*context \S*app[,)].*: from`).MatchString(runs[1].log) {
				t.Errorf("dockhand injected cache flags into the step's own builder:\n%s", runs[1].log)
			}
		})
	}
}

// TestHostLevelBuildxConfig: the agent's environment points buildx at a
// host-level store (BUILDX_CONFIG) holding a builder of the host's,
// current there. Under dockhand a plain `docker buildx build` runs on
// dockhand's builder, the host's builder still builds when named, and the
// host store is left as it was.
func TestHostLevelBuildxConfig(t *testing.T) {
	t.Parallel()
	kit := harness.Start(t, harness.Options{})
	shared, err := kit.StartBuildkitdWith(harness.BuildkitdOptions{Name: "shared", InsecureRegistries: []string{kit.Registry.Host}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	host := filepath.Join(r.tempDir(), "host-buildx") // the agent user's, as a host's BUILDX_CONFIG would be
	hostEnv := []string{"BUILDX_CONFIG=" + host, "DOCKER_CONFIG=" + r.userDir}
	if out, err := kit.Command(r.userDir, hostEnv, "docker", "buildx", "create", "--name", "shared", "--driver", "remote", "--use", shared.Addr).CombinedOutput(); err != nil {
		t.Fatalf("docker buildx create on the host store: %v\n%s", err, out)
	}
	before := storeListing(t, host)
	r.agentEnv = []string{"BUILDX_CONFIG=" + host}
	writeFile(t, r.config, fmt.Sprintf("state_dir = %q\nbuilders = [\"remote\"]\n[remote]\nendpoints = [%q]\n", r.state, kit.Buildkitd.Addr))
	ctxDir := r.tempDir()
	writeCorpusContexts(t, ctxDir, kit.BaseImage)
	dhBefore, sharedBefore := len(historiesAt(t, kit.Kit, kit.Buildkitd.Addr)), len(historiesAt(t, kit.Kit, shared.Addr))
	id, agent := r.start(`set -e
echo "out: store=$BUILDX_CONFIG"
docker buildx build --progress plain --push -t $REG/hostcfg:dockhand "$CTX/app"
docker buildx build --builder shared --progress plain --push -t $REG/hostcfg:shared "$CTX/app"
echo "out: built"`, map[string]string{"CTX": ctxDir, "REG": kit.Registry.Host})
	f, log := r.finish(id, agent)
	if f.ExitStatus != "0" || !strings.Contains(log, "out: built") {
		t.Fatalf("exit %s\n%s", f.ExitStatus, log)
	}
	if n := len(historiesAt(t, kit.Kit, kit.Buildkitd.Addr)) - dhBefore; n != 1 {
		t.Errorf("dockhand's builder ran %d builds, want the plain buildx build\n%s", n, log)
	}
	if n := len(historiesAt(t, kit.Kit, shared.Addr)) - sharedBefore; n != 1 {
		t.Errorf("the host's builder ran %d builds, want the one that named it\n%s", n, log)
	}
	if !strings.Contains(log, "out: store="+r.state+"/jobs/") || !strings.Contains(log, "BUILDX_CONFIG="+host+" is the host's store") {
		t.Errorf("the job's BUILDX_CONFIG is not its own store, or the log does not say so:\n%s", log)
	}
	if after := storeListing(t, host); !slices.Equal(before, after) {
		t.Errorf("the host store changed:\nbefore %q\nafter  %q", before, after)
	}
}

// storeListing lists a buildx store's builders and current file.
func storeListing(t *testing.T, store string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(store, "instances"))
	var out []string
	for _, e := range entries {
		out = append(out, "instances/"+e.Name())
	}
	cur, _ := os.ReadFile(filepath.Join(store, "current"))
	return append(out, "current="+string(cur))
}
