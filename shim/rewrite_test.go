package shim

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/engine"
)

// testPolicy is a branch build of pipeline "web" checked out at /b/web, with
// the registry backend, run from the checkout.
func testPolicy() Policy {
	return Policy{
		Mode: config.CacheAuto,
		Identity: cachekey.Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main", PullRequest: "false",
			Repo: "git@github.com:acme/web.git", Checkout: "/b/web"},
		Backend: cachekey.Backend{Kind: config.CacheRegistry, Repository: "reg.example/cache"},
		Dir:     "/b/web",
	}
}

// regBlock is the block of cache flags a branch build under testPolicy gets
// for the image whose key is key (cachekey's tests pin how a key is made): read
// the branch's and the default branch's refs, write the branch's.
func regBlock(key string) string {
	ref := "reg.example/cache/web:" + key
	return "--cache-from=type=registry,ref=" + ref + "-dev --cache-from=type=registry,ref=" + ref + "-main " +
		"--cache-to=type=registry,ref=" + ref + "-dev,mode=max,ignore-error=true"
}

func splitArgs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}

var dockerfile = cachekey.Image{Context: ".", Dockerfile: "Dockerfile"}

func TestRewriteBuild(t *testing.T) {
	type tc struct {
		name   string
		args   string   // space-separated
		argv   []string // when an argument holds a space or is empty
		mod    func(*Policy)
		img    *cachekey.Image // nil: unchanged
		at     int             // where the block goes
		block  string          // the flags inserted, space-separated; "" with img: regBlock(dockerfile's key)
		reason string          // a substring of Result.Reason
		warn   bool
	}
	img := func(i cachekey.Image) *cachekey.Image { return &i }
	cases := []tc{
		// Where the subcommand is: docker's global flags in every form.
		{name: "plain", args: "buildx build .", img: &dockerfile, at: 2},
		{name: "alias b", args: "buildx b .", img: &dockerfile, at: 2},
		{name: "--debug", args: "--debug buildx build .", img: &dockerfile, at: 3},
		{name: "-D", args: "-D buildx build .", img: &dockerfile, at: 3},
		{name: "--debug=false", args: "--debug=false buildx build .", img: &dockerfile, at: 3},
		{name: "--context NAME", args: "--context ci buildx build .", img: &dockerfile, at: 4},
		{name: "--context=NAME", args: "--context=ci buildx build .", img: &dockerfile, at: 3},
		{name: "-c NAME", args: "-c ci buildx build .", img: &dockerfile, at: 4},
		{name: "-cNAME", args: "-cci buildx build .", img: &dockerfile, at: 3},
		{name: "-c=NAME", args: "-c=ci buildx build .", img: &dockerfile, at: 3},
		{name: "-H", args: "-H unix:///run/d.sock buildx build .", img: &dockerfile, at: 4},
		{name: "--host=", args: "--host=tcp://10.0.0.1:2376 buildx build .", img: &dockerfile, at: 3},
		{name: "--config", args: "--config /tmp/dc buildx build .", img: &dockerfile, at: 4},
		{name: "--log-level and -l", args: "--log-level warn -l debug buildx build .", img: &dockerfile, at: 6},
		{name: "tls flags", args: "--tls --tlsverify --tlscacert ca.pem --tlscert=c.pem --tlskey k.pem buildx build .", img: &dockerfile, at: 9},
		{name: "shorthand cluster -Dl", args: "-Dl debug buildx build .", img: &dockerfile, at: 4},
		{name: "shorthand cluster -Dlwarn", args: "-Dlwarn buildx build .", img: &dockerfile, at: 3},
		{name: "global value that is a subcommand name", args: "--context build buildx build .", img: &dockerfile, at: 4},
		{name: "global value buildx", args: "-c buildx buildx b .", img: &dockerfile, at: 4},
		// buildx's root flags before the subcommand.
		{name: "--builder NAME before", args: "buildx --builder kit build .", img: &dockerfile, at: 4},
		{name: "--builder=NAME before", args: "buildx --builder=kit build .", img: &dockerfile, at: 3},
		{name: "-D before", args: "buildx -D build .", img: &dockerfile, at: 3},
		{name: "--debug --builder before", args: "-D buildx --debug --builder build b .", img: &dockerfile, at: 6},
		{name: "builder named like a flag value", args: "buildx --builder -D build .", img: &dockerfile, at: 4},
		// The build's own flags, in every form and place.
		{name: "--builder after", args: "buildx build --builder kit .", img: &dockerfile, at: 2},
		{name: "context first", args: "buildx build . -t app:1 --push", img: &dockerfile, at: 2},
		{name: "-- terminator", args: "buildx build -t app -- .", img: &dockerfile, at: 2},
		{name: "-qt cluster", args: "buildx build -qt app .", img: &dockerfile, at: 2},
		{name: "-tapp attached", args: "buildx build -tapp:1 .", img: &dockerfile, at: 2},
		{name: "-t=app", args: "buildx build -t=app .", img: &dockerfile, at: 2},
		{name: "-q=false", args: "buildx build -q=false .", img: &dockerfile, at: 2},
		{name: "bools with values", args: "buildx build --push=true --load=false --pull --no-cache=false .", img: &dockerfile, at: 2},
		{name: "a value that looks like a cache flag", args: "buildx build --build-arg X=--cache-to .", img: &dockerfile, at: 2},
		{name: "a tag value that is a cache flag", args: "buildx build -t --cache-from .", img: &dockerfile, at: 2},
		{name: "a label value that is --", args: "buildx build --label -- .", img: &dockerfile, at: 2},
		{name: "every value flag", args: "buildx build --add-host a:1.2.3.4 --allow network.host --annotation a=b --attest type=sbom " +
			"--build-arg A=1 --build-context x=y --cgroup-parent p --iidfile /tmp/i --label l=1 --network host " +
			"--no-cache-filter s --output type=cacheonly --policy filename=p --progress plain --provenance mode=max --sbom true " +
			"--secret id=s --shm-size 1g --ssh default --ulimit nofile=1024 --resource memory=1g --metadata-file m.json " +
			"-m 1g --memory-swap 2g -c 512 --cpu-period 1 --cpu-quota 1 --cpuset-cpus 0 --cpuset-mems 0 --isolation x " +
			"--security-opt s --compress --squash --rm --force-rm .", img: &dockerfile, at: 2},
		{name: "-D after the subcommand", args: "buildx build -D .", img: &dockerfile, at: 2},
		// The image key.
		{name: "-f relative to the working dir", args: "buildx build -f docker/app.Dockerfile .",
			img: img(cachekey.Image{Context: ".", Dockerfile: "docker/app.Dockerfile"}), at: 2, block: regBlock("9074bdbbd4bf")},
		{name: "--file= and --target", args: "buildx build --file=Dockerfile --target test .",
			img: img(cachekey.Image{Context: ".", Dockerfile: "Dockerfile", Target: "test"}), at: 2, block: regBlock("6fab39076f9f")},
		{name: "last --target wins", args: "buildx build --target a --target b .",
			img: img(cachekey.Image{Context: ".", Dockerfile: "Dockerfile", Target: "b"}), at: 2, block: regBlock("1c2590e933f6")},
		{name: "subdir context", args: "buildx build ./svc/api",
			img: img(cachekey.Image{Context: "svc/api", Dockerfile: "svc/api/Dockerfile"}), at: 2, block: regBlock("627f9f7b18d3")},
		{name: "from a subdir of the checkout", args: "buildx build .", mod: func(p *Policy) { p.Dir = "/b/web/svc" },
			img: img(cachekey.Image{Context: "svc", Dockerfile: "svc/Dockerfile"}), at: 2, block: regBlock("adea2dc1abfd")},
		{name: "context outside the checkout", args: "buildx build /srv/ctx",
			img: img(cachekey.Image{Context: "/srv/ctx", Dockerfile: "/srv/ctx/Dockerfile"}), at: 2, block: regBlock("bdff83050d3c")},
		{name: "sibling dir is outside", args: "buildx build ../web2",
			img: img(cachekey.Image{Context: "/b/web2", Dockerfile: "/b/web2/Dockerfile"}), at: 2, block: regBlock("d62c02e805c3")},
		{name: "no checkout: absolute paths", args: "buildx build .", mod: func(p *Policy) { p.Identity.Checkout = "" },
			img: img(cachekey.Image{Context: "/b/web", Dockerfile: "/b/web/Dockerfile"}), at: 2, block: regBlock("3f715fb4dc8d")},
		{name: "platforms", args: "buildx build --platform linux/arm64,linux/amd64 --platform linux/amd64 .",
			img: img(cachekey.Image{Context: ".", Dockerfile: "Dockerfile", Platforms: []string{"linux/arm64", "linux/amd64"}}), at: 2, block: regBlock("4ccbbdc70d08")},
		{name: "git context", args: "buildx build https://github.com/acme/web.git#main",
			img: img(cachekey.Image{Context: "https://github.com/acme/web.git#main", Dockerfile: "Dockerfile"}), at: 2, block: regBlock("76985830262e")},
		{name: "git@ context with -f", args: "buildx build -f build/Dockerfile git@github.com:acme/web.git",
			img: img(cachekey.Image{Context: "git@github.com:acme/web.git", Dockerfile: "build/Dockerfile"}), at: 2, block: regBlock("4fb25bd631f3")},
		{name: "empty context argument", argv: []string{"buildx", "build", ""},
			img: img(cachekey.Image{Context: ".", Dockerfile: "Dockerfile"}), at: 2},
		// Standalone (the plugin run by hand).
		{name: "standalone", args: "build .", mod: func(p *Policy) { p.Standalone = true }, img: &dockerfile, at: 1},
		{name: "standalone with root flags", args: "--builder kit b .", mod: func(p *Policy) { p.Standalone = true }, img: &dockerfile, at: 3},
		// What the cache may do.
		{name: "--no-cache only writes", args: "buildx build --no-cache .", img: &dockerfile, at: 2,
			block: "--cache-to=type=registry,ref=reg.example/cache/web:619a0faf8f37-dev,mode=max,ignore-error=true"},
		{name: "docker driver only reads", args: "buildx build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts { return BuilderFacts{Name: "default", Driver: "docker"} }
		}, img: &dockerfile, at: 2, reason: "read-only",
			block: "--cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-dev --cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-main"},
		// The engine's own builder writes the cache only on the containerd
		// image store, and only to a registry or a directory.
		{name: "docker driver on the containerd store reads and writes", args: "buildx build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts { return BuilderFacts{Name: "default", Driver: "docker"} }
			p.EngineStore = func(string) string { return engine.StoreContainerd }
		}, img: &dockerfile, at: 2},
		{name: "docker driver on the classic store only reads", args: "buildx build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts { return BuilderFacts{Name: "default", Driver: "docker"} }
			p.EngineStore = func(string) string { return engine.StoreClassic }
		}, img: &dockerfile, at: 2, reason: "classic image store",
			block: "--cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-dev --cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-main"},
		{name: "docker driver, store unknown: only reads", args: "buildx build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts { return BuilderFacts{Name: "default", Driver: "docker"} }
			p.EngineStore = func(string) string { return "" }
		}, img: &dockerfile, at: 2, reason: "read-only",
			block: "--cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-dev --cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-main"},
		{name: "docker driver on the containerd store never writes s3 (no exporter)", args: "buildx build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts { return BuilderFacts{Name: "default", Driver: "docker"} }
			p.EngineStore = func(string) string { return engine.StoreContainerd }
			p.Backend = cachekey.Backend{Kind: config.CacheS3, S3: cachekey.S3Backend{Bucket: "b", Region: "r"}}
		}, img: &dockerfile, at: 2, reason: "cannot export s3 cache",
			block: "--cache-from=type=s3,bucket=b,region=r,prefix=web/,name=619a0faf8f37-dev --cache-from=type=s3,bucket=b,region=r,prefix=web/,name=619a0faf8f37-main"},
		{name: "docker driver with --no-cache: nothing", args: "buildx build --no-cache .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts { return BuilderFacts{Name: "default", Driver: "docker"} }
		}, reason: "neither reads nor writes"},
		{name: "auto: persistent builder keeps its cache", args: "buildx build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts {
				return BuilderFacts{Name: "dockhand", Driver: "remote", Nodes: 1, Persistent: true}
			}
		}, reason: "keeps its own cache"},
		{name: "always: persistent builder too", args: "buildx build .", mod: func(p *Policy) {
			p.Mode = config.CacheAlways
			p.Builder = func(name string) BuilderFacts {
				return BuilderFacts{Name: "dockhand", Driver: "remote", Nodes: 1, Persistent: true}
			}
		}, img: &dockerfile, at: 2},
		{name: "auto: the builder asked for is looked up", args: "buildx --builder other build .", mod: func(p *Policy) {
			p.Builder = func(name string) BuilderFacts {
				return BuilderFacts{Name: name, Driver: "remote", Persistent: name == ""}
			}
		}, img: &dockerfile, at: 4},
		{name: "off", args: "buildx build .", mod: func(p *Policy) { p.Mode = config.CacheOff }, reason: "cache.mode is off"},
		{name: "fork: read-only", args: "buildx build .", mod: func(p *Policy) {
			p.Identity.PullRequest, p.Identity.PullRequestRepo = "5", "https://github.com/mallory/web"
		}, img: &dockerfile, at: 2, reason: "fork",
			block: "--cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-pr-5 " +
				"--cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-dev --cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-main"},
		{name: "no pipeline", args: "buildx build .", mod: func(p *Policy) { p.Identity.Pipeline = "" }, reason: "pipeline slug"},
		{name: "no repository", args: "buildx build .", mod: func(p *Policy) { p.Backend.Repository = "" }, reason: "cache.repository"},
		// The user's own choices pass through untouched.
		{name: "user --cache-from", args: "buildx build --cache-from type=registry,ref=r/c .", reason: "its own"},
		{name: "user --cache-to=", args: "buildx build --cache-to=type=inline .", reason: "its own"},
		{name: "user cache flag after the context", args: "buildx build . --cache-from=r/c", reason: "its own"},
		{name: "--call=check", args: "buildx build --call=check .", reason: "evaluates"},
		{name: "--call outline", args: "buildx build --call outline .", reason: "evaluates"},
		{name: "--call=build builds", args: "buildx build --call=build .", img: &dockerfile, at: 2},
		{name: "--check", args: "buildx build --check .", reason: "evaluates"},
		{name: "--check=false builds", args: "buildx build --check=false .", img: &dockerfile, at: 2},
		{name: "--print", args: "buildx build --print=outline .", reason: "evaluates"},
		{name: "context on stdin", args: "buildx build -", reason: "stdin"},
		{name: "context on stdin after --", args: "buildx build -t x -- -", reason: "stdin"},
		{name: "Dockerfile on stdin", args: "buildx build -f - .", reason: "stdin"},
		{name: "no context", args: "buildx build -t x", reason: "one context"},
		{name: "two contexts", args: "buildx build a b", reason: "one context"},
		{name: "--help", args: "buildx build --help .", reason: "help"},
		{name: "-h", args: "buildx build -h", reason: "help"},
		{name: "docker --help", args: "--help buildx build .", reason: "help"},
		// Other commands.
		{name: "metadata", args: "docker-cli-plugin-metadata", reason: "not a build"},
		{name: "hooks", args: "buildx docker-cli-plugin-hooks {}", reason: "not a build"},
		{name: "ls", args: "buildx ls", reason: "not a build"},
		{name: "imagetools", args: "buildx imagetools inspect --raw reg/x:1", reason: "not a build"},
		{name: "imagetools create with unknown flags", args: "buildx imagetools create --cache-to x -t a b", reason: "not a build"},
		{name: "version", args: "buildx version", reason: "not a build"},
		{name: "buildx alone", args: "buildx", reason: "not a build"},
		{name: "debug build", args: "buildx debug build .", reason: "not a build"},
		{name: "history", args: "buildx --builder kit history ls", reason: "not a build"},
		// Arguments the shim cannot read: unchanged, and said.
		{name: "unknown long flag", args: "buildx build --frobnicate .", reason: "unknown flag --frobnicate", warn: true},
		{name: "unknown flag with value", args: "buildx build --frobnicate=1 .", reason: "unknown flag", warn: true},
		{name: "unknown shorthand", args: "buildx build -Z .", reason: "unknown shorthand", warn: true},
		{name: "unknown shorthand in a cluster", args: "buildx build -qZ .", reason: "unknown shorthand", warn: true},
		{name: "missing value", args: "buildx build --platform", reason: "needs an argument", warn: true},
		{name: "missing shorthand value", args: "buildx build . -t", reason: "needs an argument", warn: true},
		{name: "bad syntax ---", args: "buildx build ---x .", reason: "bad flag syntax", warn: true},
		{name: "bad syntax --=", args: "buildx build --=x .", reason: "bad flag syntax", warn: true},
		{name: "unknown docker global flag", args: "--frob buildx build .", reason: "unknown flag", warn: true},
		{name: "docker flag after buildx", args: "buildx --context ci build .", reason: "unknown flag", warn: true},
		{name: "no buildx word", args: "build .", reason: "do not name the buildx plugin", warn: true},
		{name: "missing builder value", args: "buildx --builder", reason: "needs an argument", warn: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := testPolicy()
			if c.mod != nil {
				c.mod(&p)
			}
			args := c.argv
			if args == nil {
				args = splitArgs(c.args)
			}
			orig := slices.Clone(args)
			res := Rewrite(args, p)
			if !slices.Equal(args, orig) {
				t.Fatalf("Rewrite modified its input: %q", args)
			}
			want := orig
			if c.img != nil {
				block := c.block
				if block == "" {
					block = regBlock("619a0faf8f37")
				}
				want = append(append(append([]string{}, orig[:c.at]...), splitArgs(block)...), orig[c.at:]...)
			}
			if !slices.Equal(res.Args, want) {
				t.Errorf("Rewrite(%q) =\n %q\nwant\n %q\n(reason %q)", orig, res.Args, want, res.Reason)
			}
			if res.Changed != (c.img != nil) {
				t.Errorf("Changed = %v, want %v", res.Changed, c.img != nil)
			}
			if c.img != nil && (len(res.Injections) != 1 || !reflect.DeepEqual(res.Injections[0].Image, *c.img)) {
				t.Errorf("Injections = %+v, want one for %+v", res.Injections, *c.img)
			}
			if !strings.Contains(res.Reason, c.reason) {
				t.Errorf("Reason = %q, want it to contain %q", res.Reason, c.reason)
			}
			if c.img != nil && c.reason == "" && res.Reason != "" {
				t.Errorf("Reason = %q for a full injection", res.Reason)
			}
			if res.Warn != c.warn {
				t.Errorf("Warn = %v, want %v (reason %q)", res.Warn, c.warn, res.Reason)
			}
		})
	}
}

// A pull request's injected flags never name the default branch's ref as a
// --cache-to, whatever the command.
func TestRewritePullRequestNeverWritesDefault(t *testing.T) {
	p := testPolicy()
	p.Identity.PullRequest = "77"
	res := Rewrite(splitArgs("buildx build -t app ."), p)
	if !res.Changed {
		t.Fatalf("not injected: %s", res.Reason)
	}
	var to []string
	for _, a := range res.Args {
		if v, ok := strings.CutPrefix(a, "--cache-to="); ok {
			to = append(to, v)
		}
	}
	if !slices.Equal(to, []string{"type=registry,ref=reg.example/cache/web:619a0faf8f37-pr-77,mode=max,ignore-error=true"}) {
		t.Errorf("--cache-to = %q, want only the pull request's ref", to)
	}
	if !slices.Contains(res.Args, "--cache-from=type=registry,ref=reg.example/cache/web:619a0faf8f37-main") {
		t.Errorf("the default branch's cache is not read: %q", res.Args)
	}
}

func bakePolicy(targets []BakeTarget, err error) Policy {
	p := testPolicy()
	p.Bake = func() ([]BakeTarget, error) { return targets, err }
	return p
}

func TestRewriteBake(t *testing.T) {
	app := BakeTarget{Name: "app", Context: ".", Dockerfile: "Dockerfile"}
	test := BakeTarget{Name: "test", Context: ".", Dockerfile: "Dockerfile", Target: "test", Platforms: []string{"linux/amd64"}}
	appImg := cachekey.Image{BakeTarget: "app", Context: ".", Dockerfile: "Dockerfile"}
	testImg := cachekey.Image{BakeTarget: "test", Context: ".", Dockerfile: "Dockerfile", Target: "test", Platforms: []string{"linux/amd64"}}
	// The --set flags bake gets for a target whose image has key key.
	setBlock := func(target, key string) []string {
		ref := "reg.example/cache/web:" + key
		return []string{
			"--set=" + target + ".cache-from=type=registry,ref=" + ref + "-dev",
			"--set=" + target + ".cache-from=type=registry,ref=" + ref + "-main",
			"--set=" + target + ".cache-to=type=registry,ref=" + ref + "-dev,mode=max,ignore-error=true",
		}
	}
	keys := map[string]string{"app": "69f211f4dbf3", "test": "6d5887e57dcb", "api": "1bcd8f0558a9", "x": "abf62bb08bbc"}
	for _, c := range []struct {
		name    string
		args    string
		targets []BakeTarget
		err     error
		imgs    []cachekey.Image
		at      int
		reason  string
		warn    bool
	}{
		{name: "two targets, each its own key", args: "buildx bake", targets: []BakeTarget{app, test}, imgs: []cachekey.Image{appImg, testImg}, at: 2},
		{name: "alias f", args: "buildx f app", targets: []BakeTarget{app}, imgs: []cachekey.Image{appImg}, at: 2},
		{name: "global and root flags", args: "-c ci buildx --builder kit bake -f a.hcl -f=b.hcl --set *.platform=linux/amd64 app",
			targets: []BakeTarget{app}, imgs: []cachekey.Image{appImg}, at: 6},
		{name: "every bake flag", args: "buildx bake --allow fs.read=. -j 2 --jobs=4 --load --push --metadata-file m --no-cache=false " +
			"--policy disabled=true --progress plain --provenance false --pull --sbom true --var X=1 --list-targets=false --print=false app",
			targets: []BakeTarget{app}, imgs: []cachekey.Image{appImg}, at: 2},
		{name: "a target with its own cache", args: "buildx bake",
			targets: []BakeTarget{app, {Name: "test", Context: ".", HasCacheTo: true}}, imgs: []cachekey.Image{appImg}, at: 2, reason: "test (sets its own"},
		{name: "every target has its own cache", args: "buildx bake", targets: []BakeTarget{{Name: "app", HasCacheFrom: true}}, reason: "sets its own"},
		{name: "a target that only checks", args: "buildx bake", targets: []BakeTarget{app, {Name: "lint", Call: "check"}}, imgs: []cachekey.Image{appImg}, at: 2, reason: "lint (call=check)"},
		{name: "dockerfile relative to its context", args: "buildx bake api",
			targets: []BakeTarget{{Name: "api", Context: "svc/api", Dockerfile: "build.Dockerfile"}},
			imgs:    []cachekey.Image{{BakeTarget: "api", Context: "svc/api", Dockerfile: "svc/api/build.Dockerfile"}}, at: 2},
		{name: "inline dockerfile", args: "buildx bake",
			targets: []BakeTarget{{Name: "x", Context: ".", DockerfileInline: true}},
			imgs:    []cachekey.Image{{BakeTarget: "x", Context: ".", Dockerfile: "inline"}}, at: 2},
		{name: "an unaddressable name", args: "buildx bake", targets: []BakeTarget{{Name: "a.b"}}, reason: "cannot address"},
		{name: "no targets", args: "buildx bake", reason: "no targets"},
		{name: "--print", args: "buildx bake --print", reason: "prints"},
		{name: "--list", args: "buildx bake --list=targets", reason: "lists"},
		{name: "--list-targets", args: "buildx bake --list-targets", reason: "prints"},
		{name: "--call=check", args: "buildx bake --call=check", reason: "evaluates"},
		{name: "--check", args: "buildx bake --check app", reason: "evaluates"},
		// As docker compose calls it (always from v5; the shim reads the
		// definition and hands it on, replayInput).
		{name: "definition on stdin", args: "buildx bake --file - --progress rawjson --metadata-file /tmp/m.json --allow fs.read=/b/web",
			targets: []BakeTarget{app}, imgs: []cachekey.Image{appImg}, at: 2},
		{name: "definition on stdin and in a file", args: "buildx bake -f - -f=b.hcl app", targets: []BakeTarget{app}, imgs: []cachekey.Image{appImg}, at: 2},
		{name: "remote definition", args: "buildx bake https://github.com/acme/web.git app", reason: "remote"},
		{name: "--help", args: "buildx bake --help", reason: "help"},
		{name: "unknown flag", args: "buildx bake --frob", reason: "unknown flag", warn: true},
		{name: "bake --print failed", args: "buildx bake", err: errors.New("exit status 1: no such file"), reason: "reading the bake targets", warn: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := bakePolicy(c.targets, c.err)
			args := splitArgs(c.args)
			res := Rewrite(args, p)
			want := args
			if len(c.imgs) > 0 {
				var block []string
				for _, img := range c.imgs {
					block = append(block, setBlock(img.BakeTarget, keys[img.BakeTarget])...)
				}
				want = append(append(append([]string{}, args[:c.at]...), block...), args[c.at:]...)
			}
			if !slices.Equal(res.Args, want) {
				t.Errorf("Rewrite(%q) =\n %q\nwant\n %q\n(reason %q)", args, res.Args, want, res.Reason)
			}
			var got []cachekey.Image
			for _, inj := range res.Injections {
				got = append(got, inj.Image)
			}
			if !reflect.DeepEqual(got, c.imgs) {
				t.Errorf("injected for images\n %+v\nwant\n %+v", got, c.imgs)
			}
			if !strings.Contains(res.Reason, c.reason) || res.Warn != c.warn {
				t.Errorf("Reason %q Warn %v, want %q %v", res.Reason, res.Warn, c.reason, c.warn)
			}
		})
	}
	// The bake targets are only resolved when needed.
	p := testPolicy()
	p.Bake = func() ([]BakeTarget, error) { t.Fatal("bake --print run for a --print call"); return nil, nil }
	Rewrite(splitArgs("buildx bake --print"), p)
	p.Mode = config.CacheOff
	Rewrite(splitArgs("buildx bake"), p)
}

func TestRewriteBakeKeysDiffer(t *testing.T) {
	p := bakePolicy([]BakeTarget{{Name: "a", Context: "."}, {Name: "b", Context: "."}}, nil)
	res := Rewrite(splitArgs("buildx bake"), p)
	if len(res.Injections) != 2 || res.Injections[0].Plan.Key == res.Injections[1].Plan.Key {
		t.Errorf("two targets of one context share a key: %+v", res.Injections)
	}
}

// checkPreserved fails unless out is args with one block of dockhand's cache
// flags inserted (or args itself when unchanged).
func checkPreserved(t *testing.T, args []string, res Result) {
	t.Helper()
	if !res.Changed {
		if !slices.Equal(res.Args, args) {
			t.Fatalf("unchanged result differs from its input:\n %q\n %q", args, res.Args)
		}
		return
	}
	n := len(res.Args) - len(args)
	if n <= 0 {
		t.Fatalf("changed but no flags added: %q -> %q", args, res.Args)
	}
	for at := 0; at <= len(args); at++ {
		if slices.Equal(res.Args[:at], args[:at]) && slices.Equal(res.Args[at+n:], args[at:]) {
			for _, f := range res.Args[at : at+n] {
				if !strings.HasPrefix(f, "--cache-from=") && !strings.HasPrefix(f, "--cache-to=") &&
					!(strings.HasPrefix(f, "--set=") && strings.Contains(f, ".cache-")) {
					t.Fatalf("inserted %q is not a cache flag", f)
				}
			}
			return
		}
	}
	t.Fatalf("the user's arguments were dropped or reordered:\n %q\n %q", args, res.Args)
}

// FuzzRewrite: whatever the arguments, Rewrite never panics, and its output
// is the input with at most one block of cache flags inserted; an injected
// call still parses to the same command with the same positional arguments,
// and never has cache flags of its own to begin with.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		"buildx build .", "-D buildx b -t x .", "--context ci buildx --builder kit build -f d/Dockerfile --target t ctx",
		"buildx bake", "buildx bake -f a.hcl app test", "buildx build --cache-from r .", "buildx build --call=check .",
		"buildx build -- -", "buildx build -qt x -- .", "buildx ls", "buildx imagetools inspect x", "-cci -Dlwarn buildx b .",
		"buildx build --frob .", "docker-cli-plugin-metadata", "buildx build -t=--cache-to .",
	} {
		f.Add(strings.ReplaceAll(s, " ", "\x00"), false, uint8(0))
	}
	f.Fuzz(func(t *testing.T, joined string, standalone bool, variant uint8) {
		args := strings.Split(joined, "\x00")
		p := testPolicy()
		p.Standalone = standalone
		switch variant % 5 {
		case 1:
			p.Identity.PullRequest = "3"
		case 2:
			p.Backend = cachekey.Backend{Kind: config.CacheS3, S3: cachekey.S3Backend{Bucket: "b", EndpointURL: "http://h:1"}}
		case 3:
			p.Backend = cachekey.Backend{Kind: config.CacheLocal, LocalDir: "/c,d"}
		case 4:
			p.Builder = func(string) BuilderFacts { return BuilderFacts{Driver: "docker"} }
		}
		p.Bake = func() ([]BakeTarget, error) {
			return []BakeTarget{{Name: "app", Context: "."}, {Name: "t", Context: "x", Target: "t"}}, nil
		}
		orig := slices.Clone(args)
		res := Rewrite(args, p)
		if !slices.Equal(args, orig) {
			t.Fatalf("input modified")
		}
		checkPreserved(t, args, res)
		if !res.Changed {
			return
		}
		before, err := ParseInvocation(args, standalone)
		if err != nil {
			t.Fatalf("injected into arguments that do not parse: %v", err)
		}
		if before.userSetsCache() {
			t.Fatalf("injected although the user set cache flags: %q", args)
		}
		after, err := ParseInvocation(res.Args, standalone)
		if err != nil {
			t.Fatalf("the rewritten arguments do not parse: %v\n%q", err, res.Args)
		}
		if after.Command != before.Command || after.SubIndex != before.SubIndex || !slices.Equal(after.args, before.args) {
			t.Fatalf("the rewrite changed the command: %+v -> %+v", before, after)
		}
	})
}
