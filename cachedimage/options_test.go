package cachedimage

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseFromPluginEnvironment(t *testing.T) {
	const p = EnvPrefix
	env := []string{
		"BUILDKITE_ORGANIZATION_SLUG=acme", "BUILDKITE_PIPELINE_SLUG=web", "AWS_DEFAULT_REGION=ap-southeast-2",
		p + "DOCKERFILE=docker/Dockerfile", p + "TARGET=deps", p + "CONTEXT=.",
		p + "BUILD_ARGS_0=A=1", p + "BUILD_ARGS_1=B", p + "BUILD_ARGS_10=K=10", p + "BUILD_ARGS_2=C=2",
		p + "SECRETS_0=NPM_TOKEN", p + "SECRETS_1=id=npmrc,src=.npmrc",
		p + "CACHE_ON=yarn.lock", p + "CACHE_ON_0=**/package.json",
		p + "ECR_TAGS_TEAM=web", p + "ECR_TAGS_COST_CENTRE=42",
		p + "MAX_AGE_DAYS=7", p + "SKIP_PULL_FROM_CACHE=true", p + "EXPORT_ENV_VARIABLE=MY_IMAGE",
		p + "ADDITIONAL_BUILD_ARGS=--pull",
	}
	o, err := Parse(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	want := &Options{
		Dockerfile: "docker/Dockerfile", Target: "deps", Context: ".",
		BuildArgs:           []string{"A=1", "K=10", "B", "C=2"}, // `env | sort`: _10=… before _1=…
		AdditionalBuildArgs: "--pull",
		Secrets: []Secret{{ID: "NPM_TOKEN", Env: "NPM_TOKEN", Raw: "NPM_TOKEN"},
			{ID: "npmrc", Src: ".npmrc", Raw: "id=npmrc,src=.npmrc"}},
		CacheOn:    []string{"yarn.lock", "**/package.json"},
		MaxAgeDays: 7, ECRTags: []KeyValue{{"COST_CENTRE", "42"}, {"TEAM", "web"}},
		Region: "ap-southeast-2", RegistryProvider: "ecr", RegistryHostname: "gcr.io",
		ExportEnvVariable: "MY_IMAGE", SkipPullFromCache: true, OrgSlug: "acme", PipelineSlug: "web",
	}
	o.Source, o.Warnings = nil, nil
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
	if name, _ := o.RepositoryName(); name != "build-cache/acme/web" {
		t.Errorf("repository %q", name)
	}
}

func TestParseFlagsWinOverEnvironment(t *testing.T) {
	const p = EnvPrefix
	env := []string{p + "CACHE_ON_0=a", p + "CACHE_ON_1=b", p + "TARGET=env-target", p + "ECR_TAGS_X=1", p + "BUILD_ARGS_0=E=1"}
	o, err := Parse([]string{"--cache-on", "c", "--cache-on", "d", "--target", "flag-target", "--ecr-tags", "Team=ci",
		"--registry-provider", "gcr", "--gcp-project", "proj", "--registry-hostname", "127.0.0.1:5000", "--ecr-name", "deps",
		"--print-tag"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.CacheOn, []string{"c", "d"}) || o.Target != "flag-target" || !o.PrintTag {
		t.Errorf("flags did not win: %+v", o)
	}
	if !reflect.DeepEqual(o.BuildArgs, []string{"E=1"}) {
		t.Errorf("build-args from the environment lost: %q", o.BuildArgs)
	}
	if !reflect.DeepEqual(o.ECRTags, []KeyValue{{"Team", "ci"}}) {
		t.Errorf("ecr-tags %v", o.ECRTags)
	}
	if img, _ := o.GCRImage(); img != "127.0.0.1:5000/proj/deps" {
		t.Errorf("gcr image %q", img)
	}
	if o.Source["target"] != "--target" || o.Source["build-args"] != p+"BUILD_ARGS_0" {
		t.Errorf("sources %v", o.Source)
	}
}

func TestParseErrorsNameTheOption(t *testing.T) {
	const p = EnvPrefix
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{nil, []string{p + "REGISTRY_PROVIDER=quay"}, `registry-provider "quay" (from ` + p + `REGISTRY_PROVIDER): unknown provider`},
		{[]string{"--registry-provider", "gcr"}, nil, "gcp-project is required with registry-provider gcr"},
		{nil, []string{p + "MAX_AGE_DAYS=soon"}, `max-age-days "soon" (from ` + p + `MAX_AGE_DAYS): want a whole number`},
		{[]string{"--max-age-days", "0"}, nil, `max-age-days "0" (from --max-age-days)`},
		{nil, []string{p + "SKIP_PULL_FROM_CACHE=yes"}, `skip-pull-from-cache "yes"`},
		{nil, []string{p + "DOCKERFILE=a", p + "DOCKERFILE_INLINE=FROM x"}, "dockerfile (from " + p + "DOCKERFILE) and dockerfile-inline"},
		{nil, []string{p + "SECRETS_0=id=x,path=y"}, `secrets item "id=x,path=y" (from ` + p + `SECRETS_0): unknown field "path"`},
		{nil, []string{p + "SECRETS_0=not a name"}, "want a variable NAME"},
		{nil, []string{p + "BUILD_ARGS_0=1BAD=x"}, `build-args item "1BAD=x"`},
		{nil, []string{p + "EXPORT_ENV_VARIABLE=my-image"}, `export-env-variable "my-image"`},
		{[]string{"--ecr-tags", "novalue"}, nil, `ecr-tags "novalue" (from --ecr-tags): want KEY=VALUE`},
		{[]string{"--progress", "fancy"}, nil, `progress "fancy"`},
		{[]string{"--no-such-flag"}, nil, "flag provided but not defined: -no-such-flag"},
		{[]string{"positional"}, nil, `unexpected argument "positional"`},
		{[]string{"--tag", "ABC1234"}, nil, `tag "ABC1234" (from --tag): want 7 hex digits`},
		{nil, []string{p + "REGISTRY_PROVIDER=gcr", p + "GCP_PROJECT="}, "gcp-project is required"},
	} {
		_, err := Parse(c.args, c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q, %q) = %v, want an error saying %q", c.args, c.env, err, c.want)
		}
	}
}

// TestParseReportsEveryProblem: every bad option is named, one line each,
// in the order of the checks, not only the first.
func TestParseReportsEveryProblem(t *testing.T) {
	const p = EnvPrefix
	_, err := Parse([]string{"--progress", "fancy"}, []string{p + "MAX_AGE_DAYS=0", p + "SECRETS_0=id=", p + "BUILD_ARGS_0=-x"})
	want := `max-age-days "0" (from ` + p + `MAX_AGE_DAYS): want a whole number of days, at least 1
progress "fancy" (from --progress): want auto, plain, tty, quiet or rawjson
secrets item "id=" (from ` + p + `SECRETS_0): empty id
build-args item "-x" (from ` + p + `BUILD_ARGS_0): "-x" is not a variable name`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

// TestParseDefaults: what an option left unset becomes, and where the
// region comes from.
func TestParseDefaults(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		region    string
		provider  string
		export    string
		maxAge    int
	}{
		{nil, nil, DefaultRegion, "ecr", DefaultExportEnvVariable, DefaultMaxAgeDays},
		{nil, []string{"AWS_DEFAULT_REGION=us-west-2"}, "us-west-2", "ecr", DefaultExportEnvVariable, DefaultMaxAgeDays},
		{[]string{"--region", "eu-north-1"}, []string{"AWS_DEFAULT_REGION=us-west-2"}, "eu-north-1", "ecr", DefaultExportEnvVariable, DefaultMaxAgeDays},
		{[]string{"--registry-provider", "gcr", "--gcp-project", "p", "--max-age-days", "3"}, []string{EnvPrefix + "EXPORT_ENV_VARIABLE=IMG"}, DefaultRegion, "gcr", "IMG", 3},
	} {
		o, err := Parse(c.args, c.env)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", c.args, c.env, err)
			continue
		}
		if o.Region != c.region || o.RegistryProvider != c.provider || o.ExportEnvVariable != c.export ||
			o.MaxAgeDays != c.maxAge || o.RegistryHostname != DefaultRegistryHostname {
			t.Errorf("Parse(%q, %q): region %q provider %q export %q max-age %d hostname %q", c.args, c.env,
				o.Region, o.RegistryProvider, o.ExportEnvVariable, o.MaxAgeDays, o.RegistryHostname)
		}
	}
}

func TestParseTagFlags(t *testing.T) {
	for _, c := range []struct {
		vals []string
		want []KeyValue
		err  string
	}{
		{nil, nil, ""},
		{[]string{"Team=ci", "Empty=", "Expr=a=b"}, []KeyValue{{"Team", "ci"}, {"Empty", ""}, {"Expr", "a=b"}}, ""},
		{[]string{"Team=ci", "novalue"}, nil, `ecr-tags "novalue" (from --ecr-tags): want KEY=VALUE`},
		{[]string{"=v"}, nil, `ecr-tags "=v"`},
	} {
		got, err := parseTagFlags(c.vals)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseTagFlags(%q) = %v, %v; want %v, %q", c.vals, got, err, c.want, c.err)
		}
	}
}

func TestReadListOrder(t *testing.T) {
	const base = EnvPrefix + "CACHE_ON"
	env := []string{base + "_2=two", base + "_10=ten", base + "_1=one", base + "=plain", base + "_0=zero", base + "_X=not-a-list-item", "OTHER=x"}
	items, names := readList(env, base)
	if want := []string{"plain", "zero", "ten", "one", "two"}; !reflect.DeepEqual(items, want) {
		t.Errorf("items %q, want %q (names %q)", items, want, names)
	}
}

func TestLocales(t *testing.T) {
	for _, c := range []struct {
		env       map[string]string
		collation string
		utf8      bool
	}{
		{map[string]string{}, "", false},
		{map[string]string{"LANG": "C.UTF-8"}, "", true},
		{map[string]string{"LANG": "en_US.UTF-8"}, "en_US.UTF-8", true},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_ALL": "C"}, "", false},
		{map[string]string{"LANG": "C.UTF-8", "LC_COLLATE": "de_DE.utf8"}, "de_DE.utf8", true},
		{map[string]string{"LC_ALL": "POSIX"}, "", false},
	} {
		if got := collationLocale(c.env); got != c.collation {
			t.Errorf("collationLocale(%v) = %q, want %q", c.env, got, c.collation)
		}
		if got := utf8Locale(c.env); got != c.utf8 {
			t.Errorf("utf8Locale(%v) = %v, want %v", c.env, got, c.utf8)
		}
	}
}

// TestLocaleSortWarning: under a locale whose collation bash would use, an
// order that could differ from byte order is flagged.
func TestLocaleSortWarning(t *testing.T) {
	dir := t.TempDir()
	tree(t, dir, map[string]string{"Dockerfile": "FROM x\n", "Zeta/package.json": "{}", "alpha/package.json": "{}"})
	env := []string{"LANG=en_US.UTF-8", EnvPrefix + "CACHE_ON=*/package.json"}
	r, err := dockhandTag(t, dir, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "the locale is en_US.UTF-8") {
		t.Errorf("no locale warning: %q", r.Warnings)
	}
	r, err = dockhandTag(t, dir, []string{"LANG=C.UTF-8", EnvPrefix + "CACHE_ON=*/package.json"})
	if err != nil || len(r.Warnings) != 0 {
		t.Errorf("C.UTF-8: %v %q", err, r.Warnings)
	}
}

func TestShowTag(t *testing.T) {
	r := TagResult{Tag: "abc1234", Explain: []string{"Dockerfile", "target"}, Warnings: []string{"w1", "w2"}}
	for _, c := range []struct {
		o               Options
		done            bool
		explain, stdout string
	}{
		{Options{}, false, "", ""},
		{Options{Explain: true}, false, "+ Dockerfile\n+ target\n", ""},
		{Options{PrintTag: true}, true, "", "abc1234\n"},
		{Options{PrintTag: true, Explain: true}, true, "+ Dockerfile\n+ target\n", "abc1234\n"},
	} {
		var warned []string
		var explain, stdout strings.Builder
		done, err := c.o.ShowTag(r, func(w string) { warned = append(warned, w) }, &explain, &stdout)
		if err != nil || done != c.done || explain.String() != c.explain || stdout.String() != c.stdout ||
			!reflect.DeepEqual(warned, r.Warnings) {
			t.Errorf("%+v: done %v err %v, explain %q, stdout %q, warned %q", c.o, done, err, explain.String(), stdout.String(), warned)
		}
	}
}
