package cachedimage

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// EnvPrefix starts every variable the Buildkite agent makes of the plugin's
// properties: `cache-on` is BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_CACHE_ON, or
// …_CACHE_ON_0, _1, … for a list.
const EnvPrefix = "BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_"

// Defaults of plugin v2.2.1.
const (
	DefaultMaxAgeDays        = 30
	DefaultRegion            = "eu-west-1"
	DefaultExportEnvVariable = "BUILDKITE_PLUGIN_DOCKER_IMAGE"
	DefaultRegistryHostname  = "gcr.io"
)

// Variables exported beside export-env-variable.
const (
	ExportImageVar = EnvPrefix + "EXPORT_IMAGE"
	ExportTagVar   = EnvPrefix + "EXPORT_TAG"
)

// Options are the plugin's properties plus dockhand's own flags, resolved
// from flags over the plugin's environment variables.
type Options struct {
	Dockerfile          string
	DockerfileInline    string
	Context             string
	Target              string
	BuildArgs           []string
	AdditionalBuildArgs string
	Secrets             []Secret
	CacheOn             []string
	MaxAgeDays          int
	ECRName             string
	ECRTags             []KeyValue
	Region              string
	RegistryProvider    string
	GCPProject          string
	RegistryHostname    string
	ExportEnvVariable   string
	SkipPullFromCache   bool

	// dockhand's own.
	PrintTag bool
	Explain  bool
	Progress string // auto, plain, tty, quiet, rawjson
	Tag      string // set by dockhand for dockhand-cloud: the tag, already computed

	// OrgSlug and PipelineSlug name the default repository.
	OrgSlug, PipelineSlug string
	// Source says where each option's value came from ("--flag" or the
	// variable's name); options at their default are absent.
	Source map[string]string
	// Warnings found while reading the options.
	Warnings []string
}

// KeyValue is one ecr-tags entry.
type KeyValue struct{ Key, Value string }

// Secret is one secrets entry: a bare NAME (the variable NAME, as id NAME)
// or the full `id=…,src=…` / `id=…,env=…` form.
type Secret struct {
	ID, Src, Env string
	Raw          string
}

// option describes one option: its flag (the plugin's property name) and
// variable suffix.
type option struct {
	name, env, usage string
	kind             optionKind
}

type optionKind int

const (
	kString optionKind = iota
	kList
	kMap
	kBool
	kOwnBool   // dockhand's, flag only
	kOwnString // dockhand's, flag only
)

var options = []option{
	{"dockerfile", "DOCKERFILE", "Dockerfile to build (default Dockerfile); its directory is the default context", kString},
	{"dockerfile-inline", "DOCKERFILE_INLINE", "the Dockerfile's text, instead of dockerfile (the context is then .)", kString},
	{"context", "CONTEXT", "build context directory (default: the Dockerfile's directory)", kString},
	{"target", "TARGET", "build stage to stop at", kString},
	{"build-args", "BUILD_ARGS", "NAME=value, or NAME to pass $NAME (repeatable; part of the tag)", kList},
	{"additional-build-args", "ADDITIONAL_BUILD_ARGS", "more docker build flags, one string (part of the tag)", kString},
	{"secrets", "SECRETS", "NAME (the variable NAME) or id=ID,src=FILE / id=ID,env=VAR (repeatable)", kList},
	{"cache-on", "CACHE_ON", "file, bash glob (** included) or FILE.json#JQ_FILTER whose content is part of the tag (repeatable)", kList},
	{"max-age-days", "MAX_AGE_DAYS", "ECR lifecycle: expire images older than this (default 30)", kString},
	{"ecr-name", "ECR_NAME", "repository name (default build-cache/ORG/PIPELINE)", kString},
	{"ecr-tags", "ECR_TAGS", "KEY=VALUE tag for a created ECR repository (repeatable)", kMap},
	{"region", "REGION", "AWS region (default $AWS_DEFAULT_REGION, else eu-west-1)", kString},
	{"registry-provider", "REGISTRY_PROVIDER", "ecr (default) or gcr", kString},
	{"gcp-project", "GCP_PROJECT", "GCP project (gcr, required)", kString},
	{"registry-hostname", "REGISTRY_HOSTNAME", "registry host for gcr (default gcr.io)", kString},
	{"export-env-variable", "EXPORT_ENV_VARIABLE", "variable that receives IMAGE:TAG (default BUILDKITE_PLUGIN_DOCKER_IMAGE)", kString},
	{"skip-pull-from-cache", "SKIP_PULL_FROM_CACHE", "accepted for compatibility: dockhand never pulls the image", kBool},
	{"print-tag", "", "print the tag and exit: no network, no builder", kOwnBool},
	{"explain", "", "print what went into the tag", kOwnBool},
	{"progress", "", "build progress: auto (plain in a job or without a terminal, else tty), plain, tty, quiet, rawjson", kOwnString},
	{"tag", "", "the tag, already computed (dockhand passes it to dockhand-cloud)", kOwnString},
}

// listValue is a repeatable flag.
type listValue struct {
	vals *[]string
	set  bool
}

func (l *listValue) String() string { return "" }
func (l *listValue) Set(v string) error {
	if !l.set {
		*l.vals, l.set = nil, true
	}
	*l.vals = append(*l.vals, v)
	return nil
}

// Usage prints the flags.
func Usage(w io.Writer) {
	fmt.Fprint(w, `Usage: dockhand cached-image [flags]

Builds (or finds) the docker-ecr-cache plugin's checksum-tagged dependency
image: the tag is the plugin's (v2.2.1), so images the plugin pushed are hits.
Every option is a flag named like the plugin's property, and is also read
from the plugin's variables (BUILDKITE_PLUGIN_DOCKER_ECR_CACHE_*); flags win.

Flags:
`)
	fs := flag.NewFlagSet("dockhand cached-image", flag.ContinueOnError)
	for _, op := range options {
		if op.name == "tag" {
			continue // dockhand's own, for dockhand-cloud
		}
		switch op.kind {
		case kBool, kOwnBool:
			fs.Bool(op.name, false, op.usage)
		default:
			fs.String(op.name, "", op.usage)
		}
	}
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// tagPattern is compiled on first use: package initialisation is on the
// start-up path of every dockhand call.
var tagPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{7}$`) })

// RepositoryName is ecr-name, or build-cache/ORG/PIPELINE.
func (o *Options) RepositoryName() (string, error) {
	if o.ECRName != "" {
		return o.ECRName, nil
	}
	if o.OrgSlug == "" || o.PipelineSlug == "" {
		return "", errors.New("ecr-name is not set and BUILDKITE_ORGANIZATION_SLUG or BUILDKITE_PIPELINE_SLUG is empty: " +
			"cannot name the default repository build-cache/ORG/PIPELINE")
	}
	return "build-cache/" + o.OrgSlug + "/" + o.PipelineSlug, nil
}

// GCRImage is the gcr provider's image name (without tag):
// REGISTRY_HOSTNAME/GCP_PROJECT/NAME. ECR's comes from its API.
func (o *Options) GCRImage() (string, error) {
	name, err := o.RepositoryName()
	if err != nil {
		return "", err
	}
	return o.RegistryHostname + "/" + o.GCPProject + "/" + name, nil
}

// TagInput is what the tag is computed from, run in dir on a machine whose
// `uname -m` is machine, with the job environment environ.
func (o *Options) TagInput(dir, machine string, environ []string) TagInput {
	env := envMap(environ)
	return TagInput{
		Dir: dir, Dockerfile: o.Dockerfile, DockerfileInline: o.DockerfileInline, Target: o.Target,
		Machine: machine, BuildArgs: o.BuildArgs, AdditionalBuildArgs: o.AdditionalBuildArgs,
		CacheOn: o.CacheOn, Env: env, UTF8: utf8Locale(env), Collation: collationLocale(env),
	}
}

func parseSecret(s string) (Secret, error) {
	if !strings.HasPrefix(s, "id=") {
		if !isName(s) {
			return Secret{}, errors.New("want a variable NAME or id=ID,src=FILE|env=VAR")
		}
		return Secret{ID: s, Env: s, Raw: s}, nil
	}
	sec := Secret{Raw: s}
	for _, field := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(field, "=")
		switch k {
		case "id":
			sec.ID = v
		case "src", "source":
			sec.Src = v
		case "env":
			sec.Env = v
		case "type":
			if v != "file" && v != "env" {
				return Secret{}, fmt.Errorf("type=%s: want file or env", v)
			}
		default:
			return Secret{}, fmt.Errorf("unknown field %q: want id, src, env or type", k)
		}
	}
	if sec.ID == "" {
		return Secret{}, errors.New("empty id")
	}
	if sec.Src == "" && sec.Env == "" {
		sec.Env = sec.ID // docker's default: the variable named like the id, else a file
	}
	return sec, nil
}

// envMap turns KEY=VALUE entries into a map; later entries win.
func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// sortedEnv is `env | sort` in the C locale: the entries in byte order.
// (Sorting whole entries orders them as sorting their first lines would: no
// two names share a first line.)
func sortedEnv(environ []string) []string {
	s := slices.Clone(environ)
	slices.Sort(s)
	return slices.Compact(s)
}

// readList reads a plugin list property as the plugin's read_list_property
// does: the plain variable first, then every variable whose name starts with
// BASE_<digits>, in `env | sort` order (so _10 comes before _2).
func readList(environ []string, base string) (items, names []string) {
	env := envMap(environ)
	if v := env[base]; v != "" {
		items, names = append(items, v), append(names, base)
	}
	for _, kv := range sortedEnv(environ) {
		k, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(k, base+"_")
		if !ok || rest == "" || !isDigit(rune(rest[0])) {
			continue
		}
		if slices.Contains(names, k) { // a name set twice in environ
			continue
		}
		items, names = append(items, env[k]), append(names, k)
	}
	return items, names
}

// listEntries returns the KEY=VALUE entries of the numbered names (the
// ones `env | sort` ordered), in the order given.
func listEntries(environ, names []string, base string) []string {
	env := envMap(environ)
	var out []string
	for _, n := range names {
		if n != base {
			out = append(out, n+"="+env[n])
		}
	}
	return out
}

// collationLocale is the LC_COLLATE locale bash and sort use, or "" when it
// is C, POSIX or C.UTF-8, whose collation is byte order.
func collationLocale(env map[string]string) string {
	l := firstSet(env, "LC_ALL", "LC_COLLATE", "LANG")
	if isCLocale(l) {
		return ""
	}
	return l
}

// utf8Locale reports whether the LC_CTYPE locale is a UTF-8 one.
func utf8Locale(env map[string]string) bool {
	l := strings.ToLower(firstSet(env, "LC_ALL", "LC_CTYPE", "LANG"))
	return strings.Contains(l, "utf-8") || strings.Contains(l, "utf8")
}

func firstSet(env map[string]string, names ...string) string {
	for _, n := range names {
		if v := env[n]; v != "" {
			return v
		}
	}
	return ""
}

func isCLocale(l string) bool {
	base, _, _ := strings.Cut(l, ".")
	return l == "" || base == "C" || base == "POSIX"
}

// Additional is o.AdditionalBuildArgs as the job's docker receives it (see
// ParseAdditional), for a build run in dir with the job's environment.
func (o *Options) Additional(dir string, environ []string) Additional {
	env := envMap(environ)
	return ParseAdditional(o.AdditionalBuildArgs, dir, utf8Locale(env), func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
}
