// Package shim is the job's docker-buildx: it parses a buildx call as docker
// and buildx do, adds the job's cache flags to a build or bake that sets none
// (Rewrite, pure), and hands over to the real plugin (exec), or, when the
// job's builder is one node of a pool, runs it as a child so a build that
// lost its node runs again on the next one.
package shim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/engine"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/proc"
	"github.com/dockhand-ci/dockhand/jobstate"
	"golang.org/x/sys/unix"
)

// RealPluginVar names the variable the bootstrap exports with the path of the
// real buildx plugin, so the shim need not search for it on every call.
const RealPluginVar = "DOCKHAND_REAL_BUILDX"

// ErrNoRealPlugin is returned when no real buildx plugin can be found.
var ErrNoRealPlugin = errors.New("the real docker-buildx plugin was not found")

// ErrStrict is returned when cache flags could not be injected and
// DOCKHAND_STRICT asks for the build to fail rather than run without them.
// The shim has already said why on stderr.
var ErrStrict = errors.New("cache not injected and DOCKHAND_STRICT is set")

// loopGuardVar is set on the real plugin's environment to the shim's pid.
// exec keeps the pid: a shim that finds its own pid there was exec'ed by
// itself (the "real" plugin was dockhand, a copy the file checks cannot see).
const loopGuardVar = "DOCKHAND_SHIM_PID"

// Target returns the real plugin the shim should exec: the recorded one,
// else the first found in the usual dirs. A recorded one that is dockhand
// itself is passed over, with a warning on log. It is separated from Exec
// so it can be tested.
func Target(lookup func(string) string, self string, log *joblog.Logger) (string, error) {
	if p := lookup(RealPluginVar); p != "" {
		if !buildx.IsSelf(p, self) {
			return p, nil
		}
		log.Warnf("ignoring %s=%s: it is dockhand's shim, not buildx; looking for the real plugin", RealPluginVar, p)
	}
	userConfig := ""
	if home := lookup("HOME"); home != "" {
		userConfig = home + "/.docker"
	}
	dirs := buildx.PluginDirs(nil, userConfig)
	if p := buildx.FindReal(dirs, self); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w (looked in %s)", ErrNoRealPlugin, strings.Join(dirs, ", "))
}

// Shim runs as the job's cli-plugins/docker-buildx: it adds cache flags to
// build and bake calls (Rewrite), then replaces its process with the real
// plugin, so docker's plugin socket, signals and exit status stay exactly the
// real plugin's. It never writes to stdout; its few lines go to stderr, which
// is the job log. ctx bounds what the shim asks before it execs (the engine,
// `bake --print`) and, when it runs a lost build again, its records.
func Shim(ctx context.Context, args []string, environ []string, self string, job *jobstate.State, stderr io.Writer) error {
	lookup := proc.LookupIn(environ)
	pid := strconv.Itoa(os.Getpid())
	if lookup(loopGuardVar) == pid {
		return fmt.Errorf("%w: %s=%s runs dockhand's shim again instead of buildx; point it at the real plugin or unset it",
			ErrNoRealPlugin, RealPluginVar, lookup(RealPluginVar))
	}
	log := joblog.New(stderr)
	real, err := Target(lookup, self, log)
	if err != nil {
		return err
	}
	if name := dockerBuildBuilder(args, lookup, job); name != "" {
		environ = append(slices.Clip(environ), buildx.BuilderVar+"="+name)
		lookup = proc.LookupIn(environ)
	}
	settings, warnings := shimSettings(job, lookup)
	if job != nil && job.Cache != nil && (len(args) == 0 || args[0] != MetadataCommand) {
		res, err := shimRewrite(ctx, args, lookup, real, environ, job, settings, warnings, stderr)
		if err != nil {
			return err
		}
		args = res.Args
	} else {
		for _, w := range warnings {
			log.Warnf("%s", w)
		}
	}
	environ = append(slices.Clip(environ), loopGuardVar+"="+pid)
	if call := retryable(args, lookup, job, settings.RetryLost); call != nil {
		// The one path that does not exec: the shim stays to run a lost
		// build again on another node.
		call.real, call.environ, call.stderr = real, environ, stderr
		return call.run(ctx)
	}
	argv := append([]string{real}, args...)
	if err := syscall.Exec(real, argv, environ); err != nil {
		return fmt.Errorf("running %s: %w", real, err)
	}
	return nil
}

// dockerBuildBuilder is the builder a plain `docker build` runs on in the
// job: dockhand's, whatever the step made current. Without dockhand docker
// runs `docker build` on the docker context's own builder whatever `docker
// buildx use` said (it sets BUILDX_BUILDER to the context); the job's
// builder alias, which sends `docker build` to buildx on the job's BuildKit
// kinds, stops that, so the shim does it with dockhand's builder, which
// stands in for the context's. It knows a `docker build` by the command path
// docker passes every plugin (OTEL_RESOURCE_ATTRIBUTES); "" when the call
// is not one, names its builder, or dockhand chose no BuildKit builder.
func dockerBuildBuilder(args []string, lookup func(string) string, job *jobstate.State) string {
	if job == nil || job.Chosen() == nil || job.Chosen().Kind == config.BuilderLocal || lookup(buildx.BuilderVar) != "" {
		return ""
	}
	switch dockerCommandPath(lookup("OTEL_RESOURCE_ATTRIBUTES")) {
	case "docker", "docker image": // forwarded from `docker build`, `docker image build`
	default:
		return ""
	}
	inv, err := ParseInvocation(args, false)
	if err != nil || inv.Command != CommandBuild || inv.Builder != "" {
		return ""
	}
	return job.Chosen().Name
}

// dockerCommandPath is the docker command a plugin runs for, from the
// baggage docker puts in OTEL_RESOURCE_ATTRIBUTES
// (docker.cli.cobra.command_path=docker%20buildx); "" when absent.
func dockerCommandPath(attrs string) string {
	path := ""
	for _, member := range strings.Split(attrs, ",") {
		kv, _, _ := strings.Cut(member, ";")
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k != "docker.cli.cobra.command_path" {
			continue
		}
		if u, err := url.PathUnescape(v); err == nil {
			path = u
		}
	}
	return path
}

// shimRewrite builds the policy from the job and the call's environment,
// rewrites the arguments and reports on stderr.
func shimRewrite(ctx context.Context, args []string, lookup func(string) string, real string, environ []string, job *jobstate.State, settings config.BuildSettings, warnings []string, stderr io.Writer) (Result, error) {
	c := job.Cache
	standalone := lookup("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND") == ""
	if inv, err := ParseInvocation(args, standalone); err == nil && inv.progressMode(lookup) == "rawjson" {
		stderr = &progressLines{w: stderr, now: time.Now}
	}
	log := joblog.New(stderr)
	for _, w := range warnings {
		log.Warnf("%s", w)
	}
	id := c.Identity
	if id.Pipeline == "" {
		id = cachekey.IdentityFromEnv(lookup)
	}
	if id.Checkout == "" {
		// The agent's job executor computes it after the bootstrap started.
		id.Checkout = lookup("BUILDKITE_BUILD_CHECKOUT_PATH")
	}
	dir, _ := os.Getwd()
	p := Policy{
		Mode: settings.CacheMode, Standalone: standalone, Identity: id, Backend: c.Backend, Dir: dir,
		Builder: func(name string) BuilderFacts { return builderFacts(name, lookup, job.Chosen()) },
		EngineStore: func(builder string) string {
			return engine.ImageStore(ctx, lookup, builder, 2*time.Second)
		},
	}
	p.Bake = func() ([]BakeTarget, error) {
		inv, err := ParseInvocation(args, standalone)
		if err != nil {
			return nil, err
		}
		var stdin []byte
		if inv.bakeFromStdin() {
			// docker compose (always, from v5) hands bake its services this
			// way: read them, and give the real plugin the same bytes.
			if stdin, err = replayInput(0); err != nil {
				return nil, fmt.Errorf("reading the bake definition on stdin: %w", err)
			}
		}
		return ResolveBake(ctx, real, args, inv.SubIndex, environ, stdin, 30*time.Second)
	}
	res := Rewrite(args, p)
	Report(log, res, settings.Debug)
	if res.Warn && settings.Strict {
		return res, ErrStrict
	}
	return res, nil
}

// shimSettings are the job's build settings with the call's pipeline-safe
// variables applied, and the warnings of those that do not apply. Outside a
// job they are the zero settings.
func shimSettings(job *jobstate.State, lookup func(string) string) (config.BuildSettings, []string) {
	if job == nil {
		return config.BuildSettings{}, nil
	}
	var s config.BuildSettings
	if c := job.Cache; c != nil {
		s = config.BuildSettings{CacheMode: c.Mode, Strict: c.Strict, Debug: c.Debug}
	}
	if job.Chosen() != nil && job.Chosen().Retry != nil {
		s.RetryLost = job.Chosen().Retry.On
	}
	return s.WithOverrides(lookup)
}

// progressLines turns the shim's lines into BuildKit progress records, one
// JSON SolveStatus a line, each a finished step named by the line, for a call
// whose stderr is its `--progress rawjson` stream: what reads that stream
// (docker compose, for one) shows them among the build's steps, where a line
// of text would be taken for part of an error, or break a strict reader.
type progressLines struct {
	w   io.Writer
	now func() time.Time
	buf []byte
}

func (p *progressLines) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(p.buf[:i])
		p.buf = p.buf[i+1:]
		sum := sha256.Sum256([]byte("dockhand\x00" + line))
		at := p.now().UTC()
		type vertex struct {
			Digest    string    `json:"digest"`
			Name      string    `json:"name"`
			Started   time.Time `json:"started"`
			Completed time.Time `json:"completed"`
		}
		data, err := json.Marshal(struct {
			Vertexes []vertex `json:"vertexes"`
		}{[]vertex{{"sha256:" + hex.EncodeToString(sum[:]), line, at, at}}})
		if err != nil {
			return len(b), err
		}
		if _, err := p.w.Write(append(data, '\n')); err != nil {
			return len(b), err
		}
	}
}

// Report prints what Rewrite did: one line per injection, one line when the
// arguments could not be understood (or, with debug, whenever nothing was
// injected).
func Report(log *joblog.Logger, res Result, debug bool) {
	for _, inj := range res.Injections {
		line := fmt.Sprintf("cache %s (%s): from %s", inj.Plan.Key, inj.Image.Describe(), strings.Join(inj.Plan.FromRefs, ", "))
		if len(inj.Plan.FromRefs) == 0 {
			line = fmt.Sprintf("cache %s (%s): from nothing (--no-cache)", inj.Plan.Key, inj.Image.Describe())
		}
		if len(inj.Plan.ToRefs) > 0 {
			line += "; to " + strings.Join(inj.Plan.ToRefs, ", ")
		} else {
			line += "; read-only (" + inj.Plan.ReadOnly + ")"
		}
		log.Printf("%s", line)
	}
	switch {
	case res.Warn:
		log.Printf("cache not injected: %s", res.Reason)
	case res.Changed && res.Reason != "" && strings.HasPrefix(res.Reason, "not for"):
		log.Printf("cache %s", res.Reason)
	case !res.Changed && debug:
		log.Printf("cache not injected: %s", res.Reason)
	}
}

// builderFacts finds out what the builder called name (or, for "", the one
// buildx would use: SelectedBuilderName) is, from the buildx store: a file
// read or two. A name with no instance is a docker context, whose builder is
// the docker driver. A builder other than the one dockhand chose for the job
// is the step's own choice.
func builderFacts(name string, lookup func(string) string, selected *jobstate.Builder) BuilderFacts {
	if name == "" {
		name = buildx.SelectedBuilderName(lookup)
	}
	store := buildx.StoreDir(lookup)
	f := BuilderFacts{Name: name, Driver: buildx.DriverDocker}
	if store != "" {
		if data, err := os.ReadFile(filepath.Join(store, "instances", strings.ToLower(name))); err == nil {
			if b, err := buildx.ParseInstance("", data); err == nil {
				f.Driver, f.Nodes = b.Driver, len(b.Nodes)
			}
		}
	}
	if selected == nil {
		return f
	}
	if !strings.EqualFold(selected.Name, name) && !(selected.Kind == config.BuilderNamespace && strings.EqualFold(name, buildx.NamespaceDocsName)) {
		f.StepOwn = true
		return f
	}
	switch selected.Kind {
	case config.BuilderNamespace:
		f.Persistent = true
	case config.BuilderRemote:
		f.Persistent = selected.Nodes <= 1
	}
	return f
}

// ResolveBake runs the real plugin's `bake --print` with the call's own
// arguments (files, variables, --set, targets) to learn the targets the bake
// will build, each with its context, Dockerfile and cache settings. It is the
// one extra process the shim may start, and only for bake. The child gets no
// plugin socket: docker accepts only one connection, the real run's. stdin
// is the definition the call gives as `--file -` (nil when it gives none).
// It is bounded by timeout and ctx.
func ResolveBake(ctx context.Context, real string, args []string, subIndex int, environ []string, stdin []byte, timeout time.Duration) ([]BakeTarget, error) {
	if subIndex < 0 || subIndex >= len(args) {
		return nil, errors.New("no bake subcommand in the arguments")
	}
	argv := append(append(slices.Clone(args[:subIndex+1]), "--print"), args[subIndex+1:]...)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, real, argv...)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "DOCKER_CLI_PLUGIN_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		return nil, fmt.Errorf("bake --print: %w: %s", err, msg)
	}
	return ParseBakePrint(stdout.Bytes())
}

// replayInput reads everything from fd (the shim's stdin) and puts the same
// bytes back on fd: an in-memory file at offset 0, which the real plugin,
// exec'ed next, reads as it would have read the original input. What was
// read is put back even when reading failed part way. It reads through a
// dup of fd: an *os.File made for fd itself would close fd when the garbage
// collector finalizes it, before the real plugin is exec'ed.
func replayInput(fd int) ([]byte, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, fmt.Errorf("dup of stdin: %w", err)
	}
	in := os.NewFile(uintptr(dup), "stdin")
	data, readErr := io.ReadAll(in)
	in.Close()
	mem, err := unix.MemfdCreate("dockhand-bake-definition", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, errors.Join(readErr, fmt.Errorf("memfd_create: %w", err))
	}
	defer unix.Close(mem)
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(mem, rest)
		if err != nil {
			return nil, errors.Join(readErr, fmt.Errorf("writing the copy of stdin: %w", err))
		}
		rest = rest[n:]
	}
	if _, err := unix.Seek(mem, 0, io.SeekStart); err != nil {
		return nil, errors.Join(readErr, err)
	}
	// dup3 onto fd leaves the new fd without close-on-exec.
	if err := unix.Dup3(mem, fd, 0); err != nil {
		return nil, errors.Join(readErr, fmt.Errorf("replacing stdin: %w", err))
	}
	return data, readErr
}

// ParseBakePrint reads `docker buildx bake --print` output.
func ParseBakePrint(data []byte) ([]BakeTarget, error) {
	var def struct {
		Target map[string]struct {
			Context          *string         `json:"context"`
			Dockerfile       *string         `json:"dockerfile"`
			DockerfileInline *string         `json:"dockerfile-inline"`
			Target           *string         `json:"target"`
			Platforms        []string        `json:"platforms"`
			CacheFrom        json.RawMessage `json:"cache-from"`
			CacheTo          json.RawMessage `json:"cache-to"`
			Call             *string         `json:"call"`
			NoCache          *bool           `json:"no-cache"`
		} `json:"target"`
	}
	if err := json.Unmarshal(data, &def); err != nil {
		return nil, fmt.Errorf("reading bake --print output: %w", err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	given := func(raw json.RawMessage) bool {
		s := strings.TrimSpace(string(raw))
		return s != "" && s != "null" && s != "[]" && s != `""`
	}
	var out []BakeTarget
	for name, t := range def.Target {
		out = append(out, BakeTarget{
			Name: name, Context: str(t.Context), Dockerfile: str(t.Dockerfile),
			DockerfileInline: t.DockerfileInline != nil, Target: str(t.Target), Platforms: t.Platforms,
			HasCacheFrom: given(t.CacheFrom), HasCacheTo: given(t.CacheTo), Call: str(t.Call),
			NoCache: t.NoCache != nil && *t.NoCache,
		})
	}
	slices.SortFunc(out, func(a, b BakeTarget) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
