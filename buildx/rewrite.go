package buildx

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/env"
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
	if p.Mode == env.CacheOff {
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
	if p.Mode != env.CacheAlways && facts.Persistent {
		return same(fmt.Sprintf("builder %s keeps its own cache (cache.mode auto)", facts.Name), false)
	}
	readOnly := ""
	if facts.Driver == DriverDocker {
		readOnly = "the docker driver cannot export cache"
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
	if isRemoteContext(ctx) {
		img.Context, img.Dockerfile = ctx, file
		if file == "" {
			img.Dockerfile = "Dockerfile"
		}
	} else {
		img.Context = keyPath(p, ctx)
		if file == "" {
			img.Dockerfile = keyPath(p, filepath.Join(ctx, "Dockerfile"))
		} else {
			img.Dockerfile = keyPath(p, file) // -f is relative to the working dir
		}
	}
	plan, err := cachekey.PlanFor(p.Identity, p.Backend, img, readOnly)
	if err != nil {
		return nil, err.Error()
	}
	if inv.flagTrue("no-cache") {
		plan.From, plan.FromRefs = nil, nil // a --no-cache build still refreshes the cache
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
	for _, f := range []string{"print", "list-targets", "list-variables"} {
		if inv.flagTrue(f) {
			return nil, nil, "the bake only prints (--" + f + ")", false
		}
	}
	if v, ok := inv.last("list"); ok {
		return nil, nil, "the bake only lists (--list=" + v + ")", false
	}
	if e := inv.evaluates(); e != "" {
		return nil, nil, "the bake only evaluates (" + e + ")", false
	}
	if len(inv.args) > 0 && isRemoteContext(inv.args[0]) {
		return nil, nil, "the bake definition is remote", false
	}
	if slices.Contains(inv.values("file"), "-") {
		return nil, nil, "the bake definition comes from stdin", false
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
		if !validBakeName(t.Name) {
			skipped = append(skipped, fmt.Sprintf("%q (a name --set cannot address)", t.Name))
			continue
		}
		if t.HasCacheFrom || t.HasCacheTo {
			skipped = append(skipped, t.Name+" (sets its own cache-from/cache-to)")
			continue
		}
		if t.Call != "" && !strings.EqualFold(t.Call, "build") {
			skipped = append(skipped, t.Name+" (call="+t.Call+")")
			continue
		}
		img := cachekey.Image{BakeTarget: t.Name, Target: t.Target, Platforms: platforms(t.Platforms)}
		ctx := t.Context
		if ctx == "" {
			ctx = "."
		}
		dockerfile := t.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		switch {
		case isRemoteContext(ctx):
			img.Context, img.Dockerfile = ctx, dockerfile
		case t.DockerfileInline:
			img.Context, img.Dockerfile = keyPath(p, ctx), "inline"
		case filepath.IsAbs(dockerfile):
			img.Context, img.Dockerfile = keyPath(p, ctx), keyPath(p, dockerfile)
		default:
			img.Context, img.Dockerfile = keyPath(p, ctx), keyPath(p, filepath.Join(ctx, dockerfile))
		}
		plan, err := cachekey.PlanFor(p.Identity, p.Backend, img, readOnly)
		if err != nil {
			return nil, nil, err.Error(), false
		}
		if t.NoCache {
			plan.From, plan.FromRefs = nil, nil
		}
		if len(plan.From)+len(plan.To) == 0 {
			skipped = append(skipped, t.Name+" (no cache to read or write)")
			continue
		}
		injections = append(injections, Injection{Image: img, Plan: plan})
		flags = append(flags, cacheFlags("--set="+t.Name+".cache-from=", "--set="+t.Name+".cache-to=", plan)...)
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
