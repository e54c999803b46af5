package shim

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/engine"
)

// BuilderFacts is what the shim knows of the builder a build runs on.
type BuilderFacts struct {
	Name   string
	Driver string // buildx driver: docker, docker-container, remote, …; "" when unknown
	Nodes  int
	// Persistent is set when dockhand chose this builder and its cache
	// outlives the job and is shared by the pipeline's jobs (one remote node
	// the pipeline is routed to, Namespace), so cache.mode=auto injects
	// nothing for it.
	Persistent bool
	// StepOwn is set when the build runs on a builder the step chose itself
	// (`--builder`, `docker buildx use`, `buildx create --use`) rather than
	// the one dockhand chose: cache.mode=auto injects nothing for it.
	StepOwn bool
}

// BakeTarget is one target of a bake, as `docker buildx bake --print`
// resolved it (files, variables, --set overrides and groups applied).
type BakeTarget struct {
	Name             string
	Context          string
	Dockerfile       string // relative to Context, as bake has it
	DockerfileInline bool
	Target           string
	Platforms        []string
	HasCacheFrom     bool
	HasCacheTo       bool
	Call             string
	NoCache          bool
}

// Policy is everything Rewrite decides with, as data.
type Policy struct {
	Mode       string // auto, always or off
	Standalone bool   // the plugin was run by hand, not by docker
	Identity   cachekey.Identity
	Backend    cachekey.Backend
	Dir        string // the working directory of the call, absolute
	// Builder describes the builder called name ("" for the default one);
	// nil means nothing is known of any builder.
	Builder func(name string) BuilderFacts
	// Bake resolves the targets of the bake call (the shim runs
	// `docker buildx bake --print`); it is called only when a bake is to be
	// injected.
	Bake func() ([]BakeTarget, error)
	// EngineStore tells where the docker engine behind a docker-driver
	// builder keeps its images (engine.StoreContainerd, engine.StoreClassic, or "" when
	// unknown); it is asked only when that decides whether the build may
	// write the cache. nil is unknown.
	EngineStore func(builder string) string
}

// Injection is the cache of one image added to a call.
type Injection struct {
	Image cachekey.Image
	Plan  cachekey.Plan
}

// Result is what Rewrite did.
type Result struct {
	Args    []string // the arguments to run the real plugin with
	Changed bool
	// Reason says why nothing, or not everything, was injected ("" when
	// everything was).
	Reason string
	// Warn is set when the reason is that the arguments could not be
	// understood: the shim says so in one line (or fails, when strict).
	Warn       bool
	Injections []Injection
}

// Rewrite adds cache flags to a `build` or `bake` call where the user gave
// none, and returns every other call unchanged. The added flags form one
// block right after the subcommand word, so the user's own arguments keep
// their order and none is dropped. It is pure: everything it needs is in p.
func Rewrite(args []string, p Policy) Result {
	same := func(reason string, warn bool) Result {
		return Result{Args: args, Reason: reason, Warn: warn}
	}
	if p.Mode == config.CacheOff {
		return same("cache.mode is off", false)
	}
	inv, err := ParseInvocation(args, p.Standalone)
	switch {
	case err != nil:
		return same(err.Error(), true)
	case inv.Command == CommandOther:
		return same("not a build", false)
	case inv.Help:
		return same("help was asked for", false)
	}
	facts := BuilderFacts{Name: inv.Builder}
	if p.Builder != nil {
		facts = p.Builder(inv.Builder)
	}
	if p.Mode != config.CacheAlways && facts.StepOwn {
		return same(fmt.Sprintf("builder %s is the step's own choice (cache.mode auto)", facts.Name), false)
	}
	if p.Mode != config.CacheAlways && facts.Persistent {
		return same(fmt.Sprintf("builder %s keeps its own cache (cache.mode auto)", facts.Name), false)
	}
	readOnly := ""
	if facts.Driver == buildx.DriverDocker {
		readOnly = dockerDriverReadOnly(p, facts.Name)
	}
	var flags []string
	var injections []Injection
	var reason string
	var warn bool
	if inv.Command == CommandBuild {
		var inj *Injection
		inj, reason = planBuild(inv, p, readOnly)
		if inj != nil {
			injections = append(injections, *inj)
			flags = cacheFlags("--cache-from=", "--cache-to=", inj.Plan)
		}
	} else {
		injections, flags, reason, warn = planBake(inv, p, readOnly)
	}
	if len(flags) == 0 {
		if reason == "" {
			reason = "nothing to inject"
		}
		return same(reason, warn)
	}
	at := inv.SubIndex + 1
	out := make([]string, 0, len(args)+len(flags))
	out = append(append(append(out, args[:at]...), flags...), args[at:]...)
	return Result{Args: out, Changed: true, Reason: reason, Warn: warn, Injections: injections}
}

// dockerDriverReadOnly says why a build on the engine's own builder (the
// docker driver) writes no cache, or "" when it may: the engine exports
// cache only when it keeps its images in containerd, and then only to a
// registry or a local directory (it has no s3 exporter: buildx would fail
// the build with `unknown cache exporter: "s3"`, ignore-error or not). A
// classic-store engine makes buildx refuse --cache-to outright.
func dockerDriverReadOnly(p Policy, builder string) string {
	if p.Backend.Kind == config.CacheS3 {
		return "the docker driver cannot export s3 cache"
	}
	if p.EngineStore == nil || p.EngineStore(builder) != engine.StoreContainerd {
		return "the docker driver cannot export cache (the engine's classic image store)"
	}
	return ""
}

// cacheFlags renders a plan as flags with the given prefixes.
func cacheFlags(from, to string, plan cachekey.Plan) []string {
	var out []string
	for _, v := range plan.From {
		out = append(out, from+v)
	}
	for _, v := range plan.To {
		out = append(out, to+v)
	}
	return out
}

// userSetsCache reports whether the call has cache flags of its own.
func (inv Invocation) userSetsCache() bool {
	return len(inv.values("cache-from")) > 0 || len(inv.values("cache-to")) > 0
}

// evaluates says which method other than building the call asks for, if any
// (--call, --check, and for build the hidden --print).
func (inv Invocation) evaluates() string {
	if inv.flagTrue("check") {
		return "--check"
	}
	if c, ok := inv.last("call"); ok && !strings.EqualFold(strings.TrimSpace(c), "build") {
		return "--call=" + c
	}
	return ""
}

// planBuild decides the cache of a `buildx build` call.
func planBuild(inv Invocation, p Policy, readOnly string) (*Injection, string) {
	if inv.userSetsCache() {
		return nil, "the build sets its own --cache-from/--cache-to"
	}
	if e := inv.evaluates(); e != "" {
		return nil, "the build only evaluates (" + e + ")"
	}
	if v, ok := inv.last("print"); ok {
		return nil, "the build only evaluates (--print=" + v + ")"
	}
	if len(inv.args) != 1 {
		return nil, fmt.Sprintf("a build takes one context, the call has %d (buildx will say)", len(inv.args))
	}
	ctx := inv.args[0]
	file, _ := inv.last("file")
	switch {
	case ctx == "-":
		return nil, "the build context comes from stdin"
	case file == "-":
		return nil, "the Dockerfile comes from stdin"
	}
	img := cachekey.Image{Target: lastOr(inv, "target"), Platforms: platforms(inv.values("platform"))}
	img.Context, img.Dockerfile = p.sources(ctx, file, false, false) // -f is relative to the working dir
	plan, err := p.plan(img, readOnly, inv.flagTrue("no-cache"))
	if err != nil {
		return nil, err.Error()
	}
	if len(plan.From) == 0 && len(plan.To) == 0 {
		return nil, "the build neither reads nor writes cache (" + plan.ReadOnly + ", --no-cache)"
	}
	return &Injection{Image: img, Plan: plan}, readOnlyReason(plan)
}

func readOnlyReason(plan cachekey.Plan) string {
	if plan.ReadOnly != "" {
		return "cache is read-only: " + plan.ReadOnly
	}
	return ""
}

// planBake decides the cache of each target of a `buildx bake` call, as
// --set TARGET.cache-from=… / --set TARGET.cache-to=… overrides.
func planBake(inv Invocation, p Policy, readOnly string) ([]Injection, []string, string, bool) {
	if reason := bakeOnlyInspects(inv); reason != "" {
		return nil, nil, reason, false
	}
	if p.Bake == nil {
		return nil, nil, "the bake targets are unknown", true
	}
	targets, err := p.Bake()
	if err != nil {
		return nil, nil, "reading the bake targets: " + err.Error(), true
	}
	var injections []Injection
	var flags, skipped []string
	for _, t := range targets {
		inj, skip, err := planBakeTarget(t, p, readOnly)
		switch {
		case err != nil:
			return nil, nil, err.Error(), false
		case skip != "":
			skipped = append(skipped, skip)
			continue
		}
		injections = append(injections, inj)
		flags = append(flags, cacheFlags("--set="+t.Name+".cache-from=", "--set="+t.Name+".cache-to=", inj.Plan)...)
	}
	var reasons []string
	if len(skipped) > 0 {
		reasons = append(reasons, "not for "+strings.Join(skipped, ", "))
	}
	if len(injections) > 0 {
		if r := readOnlyReason(injections[0].Plan); r != "" {
			reasons = append(reasons, r)
		}
	}
	if len(targets) == 0 {
		reasons = append(reasons, "the bake has no targets")
	}
	return injections, flags, strings.Join(reasons, "; "), false
}

// bakeOnlyInspects says why a bake call builds nothing whose cache dockhand
// could plan: it prints, lists or evaluates, or its definition is remote
// ("" when it builds). A definition on stdin is read like a file's: the shim
// resolves it and hands the real plugin the same bytes (replayInput).
func bakeOnlyInspects(inv Invocation) string {
	for _, f := range []string{"print", "list-targets", "list-variables"} {
		if inv.flagTrue(f) {
			return "the bake only prints (--" + f + ")"
		}
	}
	if v, ok := inv.last("list"); ok {
		return "the bake only lists (--list=" + v + ")"
	}
	if e := inv.evaluates(); e != "" {
		return "the bake only evaluates (" + e + ")"
	}
	if len(inv.args) > 0 && isRemoteContext(inv.args[0]) {
		return "the bake definition is remote"
	}
	return ""
}

// planBakeTarget plans one bake target's cache, or says why the target is
// left alone (skip).
func planBakeTarget(t BakeTarget, p Policy, readOnly string) (inj Injection, skip string, err error) {
	switch {
	case !validBakeName(t.Name):
		return inj, fmt.Sprintf("%q (a name --set cannot address)", t.Name), nil
	case t.HasCacheFrom || t.HasCacheTo:
		return inj, t.Name + " (sets its own cache-from/cache-to)", nil
	case t.Call != "" && !strings.EqualFold(t.Call, "build"):
		return inj, t.Name + " (call=" + t.Call + ")", nil
	}
	img := cachekey.Image{BakeTarget: t.Name, Target: t.Target, Platforms: platforms(t.Platforms)}
	ctx := t.Context
	if ctx == "" {
		ctx = "."
	}
	img.Context, img.Dockerfile = p.sources(ctx, t.Dockerfile, true, t.DockerfileInline) // bake's dockerfile is relative to the context
	plan, err := p.plan(img, readOnly, t.NoCache)
	if err != nil {
		return inj, "", err
	}
	if len(plan.From)+len(plan.To) == 0 {
		return inj, t.Name + " (no cache to read or write)", nil
	}
	return Injection{Image: img, Plan: plan}, "", nil
}

// sources are an image's context and Dockerfile as its cache key names them:
// a remote context as it is, local paths as keyPath makes them. file "" is
// the context's Dockerfile; a relative file is under the context when
// underContext (bake), else under the working dir (build's -f). An inline
// Dockerfile is "inline".
func (p Policy) sources(ctx, file string, underContext, inline bool) (string, string) {
	switch {
	case isRemoteContext(ctx):
		if file == "" {
			file = "Dockerfile"
		}
		return ctx, file
	case inline:
		return keyPath(p, ctx), "inline"
	case file == "":
		return keyPath(p, ctx), keyPath(p, filepath.Join(ctx, "Dockerfile"))
	case underContext && !filepath.IsAbs(file):
		return keyPath(p, ctx), keyPath(p, filepath.Join(ctx, file))
	default:
		return keyPath(p, ctx), keyPath(p, file)
	}
}

// plan is the cache plan of img; a --no-cache build reads nothing but still
// refreshes the cache.
func (p Policy) plan(img cachekey.Image, readOnly string, noCache bool) (cachekey.Plan, error) {
	plan, err := cachekey.PlanFor(p.Identity, p.Backend, img, readOnly)
	if err == nil && noCache {
		plan.From, plan.FromRefs = nil, nil
	}
	return plan, err
}

// validBakeName: bake target names --set can address exactly.
func validBakeName(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
}

func lastOr(inv Invocation, name string) string {
	v, _ := inv.last(name)
	return v
}

// platforms splits the --platform values (each may be a comma list).
func platforms(values []string) []string {
	var out []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// isRemoteContext reports whether a context is a URL buildx fetches (git or
// HTTP) rather than a local directory.
func isRemoteContext(s string) bool {
	return strings.Contains(s, "://") || strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "github.com/")
}

// keyPath makes a local path stable across agents: relative to the checkout
// when inside it, else absolute.
func keyPath(p Policy, path string) string {
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.Dir, path)
	}
	path = filepath.Clean(path)
	if p.Identity.Checkout != "" {
		if rel, err := filepath.Rel(filepath.Clean(p.Identity.Checkout), path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return rel
		}
	}
	return path
}
