package cachedimage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/cachedimage/jqeval"
	"github.com/dockhand-ci/dockhand/test/harness"
	"golang.org/x/sys/unix"
)

// realJQ is Debian's jq from .tools/bin (test/tools/install.sh).
func realJQ(t testing.TB) string {
	t.Helper()
	bin, err := harness.FindToolBin(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	jq := filepath.Join(bin, "jq")
	if _, err := os.Stat(jq); err != nil {
		t.Fatalf("Debian's jq is missing at %s: run make tools", jq)
	}
	return jq
}

func machine(t testing.TB) string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// pluginTag runs the plugin's algorithm in real bash (testdata/plugin-tag.bash)
// in dir with env, and returns the tag and the string it hashed last.
func pluginTag(t *testing.T, dir string, env []string) (tag, sums string) {
	t.Helper()
	script, err := filepath.Abs("testdata/plugin-tag.bash")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/bash", script)
	cmd.Dir = dir
	// TMPDIR: the plugin writes dockerfile-inline to a `mktemp -d` of its own.
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "JQ=" + realJQ(t), "TMPDIR=" + t.TempDir()}, env...)
	cmd.ExtraFiles = []*os.File{w}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var fd3 bytes.Buffer
	if _, err := fd3.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("plugin-tag.bash: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), strings.TrimPrefix(fd3.String(), "sums=")
}

// dockhandTag computes the tag as `dockhand cached-image` does.
func dockhandTag(t *testing.T, dir string, env []string) (TagResult, error) {
	t.Helper()
	o, err := Parse(nil, env)
	if err != nil {
		return TagResult{}, err
	}
	in := o.TagInput(dir, machine(t), env)
	in.JQ = jqeval.Eval
	return ComputeTag(in)
}

// tree writes files: "path" → content; content "->target" makes a symbolic
// link, "/" a directory.
func tree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		c := files[n]
		switch {
		case c == "/":
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(c, "->"):
			if err := os.Symlink(strings.TrimPrefix(c, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

const packageJSON = `{
  "name": "Demo-App",
  "version": "1.2.3",
  "scripts": {"test": "jest", "build": "tsc -p .", "lint": "eslint"},
  "dependencies": {"zod": "^3.22.0", "react": "18.2.0", "axios": "1.6.0", "@types/node": "20"},
  "devDependencies": {},
  "nums": [1.0, 0.1, 1e17, 1e16, 1e15, 123456789012345678, -0, 1e-5, 0.0001, 3.14159, 1e400, -2.5e-7],
  "text": "tab\there \"quoted\" back\\slash é ✓ \u0001 \u007f /",
  "nested": {"b": {"d": [true, false, null], "c": {}}, "a": []},
  "dup": {"k": 1, "j": 2, "k": 3}
}`

// TestTagMatchesThePlugin computes the tag for inputs covering every option
// that feeds it, with dockhand and with the plugin's algorithm in real bash,
// sha1sum and jq, and wants the same tag from the same hashed string.
func TestTagMatchesThePlugin(t *testing.T) {
	const p = EnvPrefix
	base := map[string]string{
		"Dockerfile":                  "FROM busybox\nRUN echo hi\n",
		"docker/Dockerfile.ci":        "FROM busybox AS deps\nRUN true\nFROM deps AS test\n",
		"package.json":                packageJSON,
		"yarn.lock":                   "# yarn lockfile v1\n",
		"package-lock.json":           `{"lockfileVersion": 3}`,
		"apps/web/package.json":       `{"name": "web", "dependencies": {"b": "1", "a": "2"}}`,
		"apps/api/package.json":       `{"name": "api"}`,
		"apps/api-v2/package.json":    `{"name": "api-v2"}`,
		"apps/api_v3/package.json":    `{"name": "api_v3"}`,
		"apps/Zeta/package.json":      `{"name": "Zeta"}`,
		"apps/.hidden/package.json":   `{"name": "hidden"}`,
		"packages/a/b/c/package.json": `{"name": "deep"}`,
		"node_modules/x/package.json": `{"name": "x"}`,
		"linked":                      "->apps",
		"src/one.lock":                "1",
		"src/two.lock":                "2",
		"src/sub/three.lock":          "3",
		"my file.txt":                 "spaces in the name",
		`back\slash.txt`:              "a backslash in the name",
		"emptydir":                    "/",
		"café.txt":                    "non-ASCII name",
		"cafe.txt":                    "ASCII name",
		"dangling":                    "->nowhere",
	}
	cases := []struct {
		name   string
		env    map[string]string
		locale string // LC_ALL; default C.UTF-8
		warn   string // a warning dockhand must give
	}{
		{name: "defaults"},
		{name: "target", env: map[string]string{p + "TARGET": "build-deps"}},
		{name: "target that echo takes as an option", env: map[string]string{p + "TARGET": "-n"}},
		{name: "target -e", env: map[string]string{p + "TARGET": "-eE"}},
		{name: "dockerfile in a subdirectory", env: map[string]string{p + "DOCKERFILE": "docker/Dockerfile.ci", p + "TARGET": "test"}},
		{name: "dockerfile with ./", env: map[string]string{p + "DOCKERFILE": "./Dockerfile"}},
		{name: "dockerfile-inline", env: map[string]string{p + "DOCKERFILE_INLINE": "FROM node:16-alpine\nWORKDIR /workdir\nRUN npm install\n"}},
		{name: "build-args plain property", env: map[string]string{p + "BUILD_ARGS": "ARG_2=such"}},
		{name: "build-args without value", env: map[string]string{p + "BUILD_ARGS_0": "ARG_1", "ARG_1": "wow"}},
		{name: "build-args without value, unset", env: map[string]string{p + "BUILD_ARGS_0": "NOT_SET_ANYWHERE"}},
		{name: "build-args list order _10 before _2", env: map[string]string{
			p + "BUILD_ARGS": "FIRST=plain", p + "BUILD_ARGS_0": "A=0", p + "BUILD_ARGS_1": "B", p + "BUILD_ARGS_2": "C=2",
			p + "BUILD_ARGS_3": "D=3", p + "BUILD_ARGS_4": "E=4", p + "BUILD_ARGS_5": "F=5", p + "BUILD_ARGS_6": "G=6",
			p + "BUILD_ARGS_7": "H=7", p + "BUILD_ARGS_8": "I=8", p + "BUILD_ARGS_9": "J=9", p + "BUILD_ARGS_10": "K=10",
			p + "BUILD_ARGS_11": "L=11", "B": "from-env"}},
		{name: "build-args _1 sorts by its value against _10", env: map[string]string{
			p + "BUILD_ARGS_1": "X=1", p + "BUILD_ARGS_10": "Y=10", p + "BUILD_ARGS_1_EXTRA": "Z=prefix-matches"}},
		{name: "build-arg value with spaces and =", env: map[string]string{p + "BUILD_ARGS_0": "OPTS=--a=b  c"}},
		{name: "additional-build-args", env: map[string]string{p + "ADDITIONAL_BUILD_ARGS": "--ssh default=$SSH_AUTH_SOCK --no-cache"}},
		{name: "cache-on one file", env: map[string]string{p + "CACHE_ON": "yarn.lock"}},
		{name: "cache-on list", env: map[string]string{p + "CACHE_ON_0": "package.json", p + "CACHE_ON_1": "package-lock.json"}},
		{name: "cache-on globstar monorepo", env: map[string]string{p + "CACHE_ON_0": "**/package.json", p + "CACHE_ON_1": "yarn.lock"}},
		{name: "cache-on glob one level", env: map[string]string{p + "CACHE_ON": "apps/*/package.json"}},
		{name: "cache-on globstar in the middle", env: map[string]string{p + "CACHE_ON": "src/**/*.lock"}},
		{name: "cache-on brackets and ?", env: map[string]string{p + "CACHE_ON": "apps/api[-_]v?/package.json"}},
		{name: "cache-on through a symlinked dir", env: map[string]string{p + "CACHE_ON": "linked/*/package.json"}},
		{name: "cache-on hidden needs a dot", env: map[string]string{p + "CACHE_ON": "apps/.*/package.json"}},
		{name: "cache-on two words in one item", env: map[string]string{p + "CACHE_ON": "yarn.lock package-lock.json"}},
		{name: "cache-on item with a newline", env: map[string]string{p + "CACHE_ON_0": "yarn.lock\npackage.json"}},
		{name: "cache-on glob matching nothing", env: map[string]string{p + "CACHE_ON": "*.nothing"}, warn: "matched no file"},
		{name: "cache-on missing file", env: map[string]string{p + "CACHE_ON": "missing.lock"}, warn: "no such file"},
		{name: "cache-on directory", env: map[string]string{p + "CACHE_ON": "emptydir"}, warn: "is a directory"},
		{name: "cache-on dangling symlink", env: map[string]string{p + "CACHE_ON": "dangling"}, warn: "no such file"},
		{name: "cache-on name with a space, globbed", env: map[string]string{p + "CACHE_ON": "my*"}},
		{name: "cache-on name with a backslash", env: map[string]string{p + "CACHE_ON": "back*"}},
		{name: "cache-on everything", env: map[string]string{p + "CACHE_ON": "**"}},
		{name: "cache-on non-ASCII with ? in C.UTF-8", env: map[string]string{p + "CACHE_ON": "caf?.txt"}},
		{name: "cache-on non-ASCII with ? in C", env: map[string]string{p + "CACHE_ON": "caf?.txt"}, locale: "C"},
		{name: "cache-on non-ASCII sorting", env: map[string]string{p + "CACHE_ON": "caf*.txt"}, locale: "C"},
		{name: "jq object keeps key order", env: map[string]string{p + "CACHE_ON": "package.json#.dependencies"}},
		{name: "jq string raw", env: map[string]string{p + "CACHE_ON": "package.json#.version"}},
		{name: "jq whole document", env: map[string]string{p + "CACHE_ON": "package.json#."}},
		{name: "jq numbers", env: map[string]string{p + "CACHE_ON": "package.json#.nums"}},
		{name: "jq escapes", env: map[string]string{p + "CACHE_ON_0": "package.json#.text", p + "CACHE_ON_1": "package.json#.text|tojson"}},
		{name: "jq iterate object", env: map[string]string{p + "CACHE_ON": "package.json#.dependencies[]"}},
		{name: "jq keys and to_entries", env: map[string]string{p + "CACHE_ON_0": "package.json#.dependencies|keys", p + "CACHE_ON_1": "package.json#.scripts|to_entries"}},
		{name: "jq keys_unsorted and length", env: map[string]string{p + "CACHE_ON_0": "package.json#.scripts|keys_unsorted", p + "CACHE_ON_1": "package.json#.scripts|length"}},
		{name: "jq comma and slice", env: map[string]string{p + "CACHE_ON": "package.json#.name,.version,.nums[1:3],.nums[-1]"}},
		{name: "jq recurse", env: map[string]string{p + "CACHE_ON": "package.json#.nested|.."}},
		{name: "jq optional", env: map[string]string{p + "CACHE_ON": "package.json#.version[]?,.nested.b.d[0]"}},
		{name: "jq duplicate key", env: map[string]string{p + "CACHE_ON": "package.json#.dup"}},
		{name: "jq missing key is null", env: map[string]string{p + "CACHE_ON": "package.json#.missing.deeper"}},
		{name: "jq quoted key", env: map[string]string{p + "CACHE_ON_0": `package.json#."dependencies"`, p + "CACHE_ON_1": `package.json#.dependencies["@types/node"]`}},
		{name: "jq through gojq", env: map[string]string{p + "CACHE_ON_0": "package.json#.name|ascii_downcase", p + "CACHE_ON_1": "package.json#.nums|max", p + "CACHE_ON_2": "package.json#.dependencies|has(\"zod\")"}},
		{name: "jq in a nested file", env: map[string]string{p + "CACHE_ON": "apps/web/package.json#.dependencies"}},
		{name: "everything at once", env: map[string]string{
			p + "DOCKERFILE": "docker/Dockerfile.ci", p + "TARGET": "deps",
			p + "BUILD_ARGS_0": "NODE_ENV=test", p + "BUILD_ARGS_1": "HOME_DIR", "HOME_DIR": "/home/ci",
			p + "ADDITIONAL_BUILD_ARGS": "--pull", p + "SECRETS_0": "NPM_TOKEN", p + "ECR_TAGS_TEAM": "ci",
			p + "CACHE_ON_0": "**/package.json", p + "CACHE_ON_1": "yarn.lock", p + "CACHE_ON_2": "package.json#.dependencies",
			p + "MAX_AGE_DAYS": "7", p + "ECR_NAME": "deps"}},
	}
	dir := t.TempDir()
	tree(t, dir, base)
	seen := map[string]string{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			locale := c.locale
			if locale == "" {
				locale = "C.UTF-8"
			}
			env := []string{"LC_ALL=" + locale, "BUILDKITE_ORGANIZATION_SLUG=org", "BUILDKITE_PIPELINE_SLUG=pipe"}
			for k, v := range c.env {
				env = append(env, k+"="+v)
			}
			wantTag, wantSums := pluginTag(t, dir, env)
			got, err := dockhandTag(t, dir, env)
			if err != nil {
				t.Fatalf("dockhand: %v", err)
			}
			if got.Tag != wantTag || got.Sums != wantSums {
				t.Errorf("tag %s, plugin's %s\ndockhand hashed:\n%s\nthe plugin hashed:\n%s", got.Tag, wantTag, got.Sums, wantSums)
			}
			if c.warn != "" && !strings.Contains(strings.Join(got.Warnings, "\n"), c.warn) {
				t.Errorf("warnings %q, want one saying %q", got.Warnings, c.warn)
			}
			if c.warn == "" && len(got.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", got.Warnings)
			}
			if prev, dup := seen[got.Tag]; dup && got.Sums != "" {
				t.Logf("same tag as %q (inputs that do not change the hash)", prev)
			}
			seen[got.Tag] = c.name
		})
	}
}

// TestTagErrorsWhereThePluginHashesGarbage: dockhand refuses what the plugin
// would hash as nothing or empty and then fail or mislead, naming the option.
func TestTagErrorsWhereThePluginHashesGarbage(t *testing.T) {
	const p = EnvPrefix
	dir := t.TempDir()
	tree(t, dir, map[string]string{"Dockerfile": "FROM x\n", "package.json": packageJSON})
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing dockerfile", map[string]string{p + "DOCKERFILE": "nope/Dockerfile"}, `dockerfile "nope/Dockerfile": stat`},
		{"dockerfile with a space", map[string]string{p + "DOCKERFILE": "my dir/Dockerfile"}, "cannot hold whitespace"},
		{"jq on a missing file", map[string]string{p + "CACHE_ON": "nope.json#.a"}, `cache-on "nope.json#.a": jq filter ".a" on nope.json`},
		{"jq on a glob", map[string]string{p + "CACHE_ON": "*/package.json#.a"}, "the plugin never expands a glob in FILE.json#FILTER"},
		{"jq filter that fails", map[string]string{p + "CACHE_ON": "package.json#.name.x"}, `cannot index string with "x"`},
		{"jq syntax error", map[string]string{p + "CACHE_ON": "package.json#.a|"}, `jq filter ".a|" on package.json`},
		{"jq that builds an object", map[string]string{p + "CACHE_ON": "package.json#{a:.name,b:.version}"}, `"{" could make the output depend on that order`},
		{"jq output with a gojq object", map[string]string{p + "CACHE_ON": "package.json#.nested|del(.a)"}, "object with several keys"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := []string{"LC_ALL=C.UTF-8"}
			for k, v := range c.env {
				env = append(env, k+"="+v)
			}
			_, err := dockhandTag(t, dir, env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}
