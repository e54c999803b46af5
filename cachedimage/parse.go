package cachedimage

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Parse resolves the options from args (flags named like the plugin's
// properties) over the plugin's variables in environ. Flags win; a list flag
// given at all replaces the variable's list. -h returns flag.ErrHelp.
//
// It reads in three steps: the plugin's variables (readVariables), the flags
// over them (given.readFlags), then the values turned into Options with their
// defaults and checked (given.options, Options.check).
func Parse(args, environ []string) (*Options, error) {
	env := envMap(environ)
	g := readVariables(environ, env)
	if err := g.readFlags(args); err != nil {
		return nil, err
	}
	o := g.options(env)
	if err := o.check(g); err != nil {
		return nil, err
	}
	return o, nil
}

// given is what the plugin's variables and the flags set, as written,
// before it is checked.
type given struct {
	raw      map[string]string   // string and bool options
	lists    map[string][]string // list options
	tags     []KeyValue          // ecr-tags
	source   map[string]string   // option -> "--flag" or the variables' names
	warnings []string
}

// readVariables reads every option from the plugin's variables, as the
// plugin does: a list from VAR and VAR_0, VAR_1, … in `env | sort` order,
// ecr-tags from VAR_KEY=VALUE. Under a locale whose collation is not byte
// order, a list whose order could differ from the plugin's is warned about.
func readVariables(environ []string, env map[string]string) *given {
	g := &given{raw: map[string]string{}, lists: map[string][]string{}, source: map[string]string{}}
	collation := collationLocale(env)
	for _, op := range options {
		name := EnvPrefix + op.env
		switch op.kind {
		case kString, kBool:
			if v := env[name]; v != "" {
				g.raw[op.name], g.source[op.name] = v, name
			}
		case kList:
			items, names := readList(environ, name)
			if len(items) > 0 {
				g.lists[op.name], g.source[op.name] = items, strings.Join(names, ", ")
			}
			if len(items) > 1 && collation != "" {
				if note := sortNote(collation, listEntries(environ, names, name)); note != "" {
					g.warnings = append(g.warnings, fmt.Sprintf("%s: `env | sort` order: %s", op.name, note))
				}
			}
		case kMap:
			for _, kv := range sortedEnv(environ) {
				k, v, _ := strings.Cut(kv, "=")
				if key, ok := strings.CutPrefix(k, name+"_"); ok && key != "" {
					g.tags = append(g.tags, KeyValue{key, v})
					g.source[op.name] = name + "_*"
				}
			}
		}
	}
	return g
}

// readFlags sets what args give over the variables: a string or bool flag
// replaces the variable, a list flag given at all replaces the whole list.
func (g *given) readFlags(args []string) error {
	fs := flag.NewFlagSet("dockhand cached-image", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	strFlags := map[string]*string{}
	boolFlags := map[string]*bool{}
	listFlags := map[string]*listValue{}
	var tagVals []string
	tagFlag := listValue{vals: &tagVals}
	for _, op := range options {
		switch op.kind {
		case kString, kOwnString:
			strFlags[op.name] = fs.String(op.name, "", op.usage)
		case kBool, kOwnBool:
			boolFlags[op.name] = fs.Bool(op.name, false, op.usage)
		case kList:
			vals := g.lists[op.name]
			lv := &listValue{vals: &vals}
			listFlags[op.name] = lv
			fs.Var(lv, op.name, op.usage)
		case kMap:
			fs.Var(&tagFlag, op.name, op.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (every option is a --flag)", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		g.source[f.Name] = "--" + f.Name
		switch {
		case strFlags[f.Name] != nil:
			g.raw[f.Name] = *strFlags[f.Name]
		case boolFlags[f.Name] != nil:
			g.raw[f.Name] = strconv.FormatBool(*boolFlags[f.Name])
		case listFlags[f.Name] != nil:
			g.lists[f.Name] = *listFlags[f.Name].vals
		}
	})
	if tagFlag.set {
		tags, err := parseTagFlags(tagVals)
		if err != nil {
			return err
		}
		g.tags = tags
	}
	return nil
}

// parseTagFlags reads --ecr-tags KEY=VALUE values (VALUE may be empty or
// hold "=").
func parseTagFlags(vals []string) ([]KeyValue, error) {
	var tags []KeyValue
	for _, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("ecr-tags %q (from --ecr-tags): want KEY=VALUE", kv)
		}
		tags = append(tags, KeyValue{k, v})
	}
	return tags, nil
}

// options are the values given, with the defaults of the options that
// have one (region: AWS_DEFAULT_REGION, then the plugin's). What needs
// parsing or checking is left to Options.check.
func (g *given) options(env map[string]string) *Options {
	return &Options{
		Dockerfile:          g.raw["dockerfile"],
		DockerfileInline:    g.raw["dockerfile-inline"],
		Context:             g.raw["context"],
		Target:              g.raw["target"],
		BuildArgs:           g.lists["build-args"],
		AdditionalBuildArgs: g.raw["additional-build-args"],
		CacheOn:             g.lists["cache-on"],
		ECRName:             g.raw["ecr-name"],
		ECRTags:             g.tags,
		Region:              cmp.Or(g.raw["region"], env["AWS_DEFAULT_REGION"], DefaultRegion),
		RegistryProvider:    cmp.Or(g.raw["registry-provider"], "ecr"),
		GCPProject:          g.raw["gcp-project"],
		RegistryHostname:    cmp.Or(g.raw["registry-hostname"], DefaultRegistryHostname),
		ExportEnvVariable:   cmp.Or(g.raw["export-env-variable"], DefaultExportEnvVariable),
		Progress:            g.raw["progress"],
		Tag:                 g.raw["tag"],
		PrintTag:            g.raw["print-tag"] == "true",
		Explain:             g.raw["explain"] == "true",
		OrgSlug:             env["BUILDKITE_ORGANIZATION_SLUG"],
		PipelineSlug:        env["BUILDKITE_PIPELINE_SLUG"],
		Source:              g.source,
		Warnings:            g.warnings,
	}
}

// check parses the options given as text (skip-pull-from-cache,
// max-age-days, secrets) and checks the rest. Every problem is reported,
// each naming the option, its value and where it came from.
func (o *Options) check(g *given) error {
	return errors.Join(
		o.parseSkipPull(g),
		o.parseMaxAge(g),
		o.checkExportVariable(g),
		o.checkRegistryProvider(g),
		o.checkDockerfile(),
		o.checkProgress(g),
		o.checkTag(g),
		o.parseSecrets(g),
		o.checkBuildArgs(),
	)
}

// invalid is the error for option name's value: what is wrong, and where
// the value came from.
func (g *given) invalid(name, why string) error {
	return fmt.Errorf("%s %q (from %s): %s", name, g.raw[name], g.source[name], why)
}

func (o *Options) parseSkipPull(g *given) error {
	switch g.raw["skip-pull-from-cache"] {
	case "", "false":
	case "true":
		o.SkipPullFromCache = true
	default:
		return g.invalid("skip-pull-from-cache", "want true or false")
	}
	return nil
}

func (o *Options) parseMaxAge(g *given) error {
	o.MaxAgeDays = DefaultMaxAgeDays
	v := g.raw["max-age-days"]
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return g.invalid("max-age-days", "want a whole number of days, at least 1")
	}
	o.MaxAgeDays = n
	return nil
}

func (o *Options) checkExportVariable(g *given) error {
	if !isName(o.ExportEnvVariable) {
		return g.invalid("export-env-variable", "not a variable name")
	}
	return nil
}

func (o *Options) checkRegistryProvider(g *given) error {
	switch o.RegistryProvider {
	case "ecr":
	case "gcr":
		if o.GCPProject == "" {
			return errors.New("gcp-project is required with registry-provider gcr")
		}
	default:
		return g.invalid("registry-provider", "unknown provider: want ecr or gcr")
	}
	return nil
}

func (o *Options) checkDockerfile() error {
	if o.Dockerfile != "" && o.DockerfileInline != "" {
		return fmt.Errorf("dockerfile (from %s) and dockerfile-inline (from %s) are both set: give one",
			o.Source["dockerfile"], o.Source["dockerfile-inline"])
	}
	return nil
}

func (o *Options) checkProgress(g *given) error {
	switch o.Progress {
	case "", "auto", "plain", "tty", "quiet", "rawjson":
		return nil
	}
	return g.invalid("progress", "want auto, plain, tty, quiet or rawjson")
}

func (o *Options) checkTag(g *given) error {
	if o.Tag != "" && !tagPattern().MatchString(o.Tag) {
		return g.invalid("tag", "want 7 hex digits")
	}
	return nil
}

func (o *Options) parseSecrets(g *given) error {
	var errs []error
	for _, s := range g.lists["secrets"] {
		sec, err := parseSecret(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("secrets item %q (from %s): %w", s, o.Source["secrets"], err))
			continue
		}
		o.Secrets = append(o.Secrets, sec)
	}
	return errors.Join(errs...)
}

func (o *Options) checkBuildArgs() error {
	var errs []error
	for _, a := range o.BuildArgs {
		if name, _, _ := strings.Cut(a, "="); !isName(name) {
			errs = append(errs, fmt.Errorf("build-args item %q (from %s): %q is not a variable name", a, o.Source["build-args"], name))
		}
	}
	return errors.Join(errs...)
}
