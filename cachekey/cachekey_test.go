package cachekey

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/config"
)

var validTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

func TestSanitizeTag(t *testing.T) {
	long := strings.Repeat("a", 200)
	for _, tc := range []struct {
		in, want string
	}{
		{"main", "main"},
		{"release-1.2", "release-1.2"},
		{"v1.0_rc", "v1.0_rc"},
		{"a--b", "a--b"},
		{"feature/login", "feature-login-"},
		{"feature-login", "feature-login"},
		{"Feature/Login Page", "Feature-Login-Page-"},
		{"user:fix", "user-fix-"},
		{".hidden", "hidden-"},
		{"-dash", "dash-"},
		{"日本", ""},
		{"", ""},
		{long, strings.Repeat("a", 110) + "-"},
	} {
		got := SanitizeTag(tc.in, 119)
		if !validTag.MatchString(got) || len(got) > 119 {
			t.Errorf("SanitizeTag(%q) = %q: not a valid tag of at most 119 bytes", tc.in, got)
		}
		if strings.HasSuffix(tc.want, "-") || tc.want == "" {
			// Changed: the given prefix and an 8-hex hash of the input.
			if !strings.HasPrefix(got, tc.want) || !regexp.MustCompile(`[0-9a-f]{8}$`).MatchString(got) || got == tc.in {
				t.Errorf("SanitizeTag(%q) = %q, want %q followed by a hash", tc.in, got, tc.want)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("SanitizeTag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if SanitizeTag("feature/x", 119) == SanitizeTag("feature-x", 119) {
		t.Errorf("feature/x and feature-x share a tag")
	}
	if SanitizeTag(long, 119) == SanitizeTag(long+"b", 119) {
		t.Errorf("two long branches that differ after the cut share a tag")
	}
}

func FuzzSanitizeTag(f *testing.F) {
	for _, s := range []string{"main", "feature/x", "", "..", "-", strings.Repeat("é", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeTag(s, 115)
		if !validTag.MatchString(got) || len(got) > 115 {
			t.Errorf("SanitizeTag(%q) = %q: invalid", s, got)
		}
	})
}

func TestPathComponent(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*$`)
	for in, want := range map[string]string{
		"web":        "web",
		"my-service": "my-service",
		"My App":     "my-app-",
		"-x-":        "x-",
		"a..b":       "a.b-",
		"":           "p",
	} {
		got := pathComponent(in)
		if !valid.MatchString(got) {
			t.Errorf("pathComponent(%q) = %q: not a valid path component", in, got)
		}
		if strings.HasSuffix(want, "-") || want == "p" {
			if !strings.HasPrefix(got, want) || got == in {
				t.Errorf("pathComponent(%q) = %q, want %q and a hash", in, got, want)
			}
		} else if got != want {
			t.Errorf("pathComponent(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeRepo(t *testing.T) {
	same := []string{
		"git@github.com:acme/web.git",
		"https://github.com/acme/web.git",
		"https://github.com/Acme/Web",
		"ssh://git@github.com/acme/web.git",
		"ssh://git@github.com:22/acme/web",
		"git://github.com/acme/web.git/",
		"github.com:acme/web",
	}
	for _, r := range same {
		if got := NormalizeRepo(r); got != "github.com/acme/web" {
			t.Errorf("NormalizeRepo(%q) = %q, want github.com/acme/web", r, got)
		}
	}
	for _, r := range []string{"git@github.com:someone/web.git", "https://gitlab.com/acme/web", "git@github.com:acme/web2.git"} {
		if NormalizeRepo(r) == "github.com/acme/web" {
			t.Errorf("NormalizeRepo(%q) matches acme/web", r)
		}
	}
}

func TestIdentityPullRequestAndFork(t *testing.T) {
	for _, tc := range []struct {
		pr, repo, prRepo string
		isPR, fork       bool
	}{
		{"false", "git@github.com:acme/web.git", "", false, false},
		{"", "git@github.com:acme/web.git", "", false, false},
		{"42", "git@github.com:acme/web.git", "", true, false},
		{"42", "git@github.com:acme/web.git", "https://github.com/acme/web.git", true, false},
		{"42", "git@github.com:acme/web.git", "https://github.com/mallory/web.git", true, true},
		{"false", "git@github.com:acme/web.git", "https://github.com/mallory/web.git", false, false},
	} {
		id := Identity{PullRequest: tc.pr, Repo: tc.repo, PullRequestRepo: tc.prRepo}
		if id.IsPullRequest() != tc.isPR || id.IsFork() != tc.fork {
			t.Errorf("%+v: IsPullRequest=%v IsFork=%v, want %v %v", id, id.IsPullRequest(), id.IsFork(), tc.isPR, tc.fork)
		}
	}
}

func TestIdentityFromEnv(t *testing.T) {
	env := map[string]string{
		"BUILDKITE_PIPELINE_SLUG": "web", "BUILDKITE_BRANCH": "dev", "BUILDKITE_PIPELINE_DEFAULT_BRANCH": "main",
		"BUILDKITE_PULL_REQUEST": "7", "BUILDKITE_REPO": "r", "BUILDKITE_PULL_REQUEST_REPO": "f",
		"BUILDKITE_BUILD_CHECKOUT_PATH": "/b",
	}
	got := IdentityFromEnv(func(k string) string { return env[k] })
	want := Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main", PullRequest: "7", Repo: "r", PullRequestRepo: "f", Checkout: "/b"}
	if got != want {
		t.Errorf("IdentityFromEnv = %+v, want %+v", got, want)
	}
}

func TestIsECR(t *testing.T) {
	for repo, want := range map[string]bool{
		"123456789012.dkr.ecr.us-east-1.amazonaws.com/build-cache":    true,
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/c":     true,
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/c":          true,
		"12345678901.dkr.ecr.us-east-1.amazonaws.com/c":               false,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example/c": false,
		"123456789012.dkr.ecr.us-east-1.on.aws/c":                     true,
		"public.ecr.aws/x/y": false,
		"127.0.0.1:5000/c":   false,
	} {
		if IsECR(repo) != want {
			t.Errorf("IsECR(%q) = %v, want %v", repo, !want, want)
		}
	}
}

func TestBackendUsable(t *testing.T) {
	for _, tc := range []struct {
		b   Backend
		err string
	}{
		{Backend{Kind: config.CacheRegistry, Repository: "reg.example/cache"}, ""},
		{Backend{Kind: config.CacheRegistry, Repository: "127.0.0.1:5000/a/b"}, ""},
		{Backend{Kind: config.CacheRegistry}, "cache.repository is not set"},
		{Backend{Kind: config.CacheRegistry, Repository: "https://reg.example/cache"}, "scheme"},
		{Backend{Kind: config.CacheRegistry, Repository: "reg.example/cache:latest"}, "tag or digest"},
		{Backend{Kind: config.CacheRegistry, Repository: "reg.example"}, "not HOST/PATH"},
		{Backend{Kind: config.CacheRegistry, Repository: "reg.example/a,b"}, "comma"},
		{Backend{Kind: config.CacheS3, S3: S3Backend{Bucket: "b"}}, ""},
		{Backend{Kind: config.CacheS3}, "cache.s3.bucket is not set"},
		{Backend{Kind: config.CacheLocal, LocalDir: "/var/cache"}, ""},
		{Backend{Kind: config.CacheLocal, LocalDir: "cache"}, "not an absolute path"},
		{Backend{Kind: "gha"}, "unknown cache backend"},
	} {
		err := tc.b.Usable()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v.Usable() = %v, want %q", tc.b, err, tc.err)
		}
	}
}

func TestImageKey(t *testing.T) {
	base := Image{Context: ".", Dockerfile: "Dockerfile"}
	// The key format is part of every cache ref already written: changing
	// it orphans them. This value must only change on purpose.
	if got := base.Key(); got != "619a0faf8f37" {
		t.Errorf("Image%+v.Key() = %q, want 619a0faf8f37", base, got)
	}
	if len(base.Key()) != 12 || base.Key() != (Image{Context: ".", Dockerfile: "Dockerfile"}).Key() {
		t.Fatalf("key %q is not 12 stable hex digits", base.Key())
	}
	seen := map[string]Image{}
	for _, img := range []Image{
		base,
		{Context: "app", Dockerfile: "Dockerfile"},
		{Context: ".", Dockerfile: "app.Dockerfile"},
		{Context: ".", Dockerfile: "Dockerfile", Target: "test"},
		{Context: ".", Dockerfile: "Dockerfile", Platforms: []string{"linux/arm64"}},
		{BakeTarget: "app", Context: ".", Dockerfile: "Dockerfile"},
		{Context: ".D", Dockerfile: "ockerfile"},
	} {
		if prev, ok := seen[img.Key()]; ok {
			t.Errorf("%+v and %+v share key %s", prev, img, img.Key())
		}
		seen[img.Key()] = img
	}
	a := Image{Context: ".", Dockerfile: "Dockerfile", Platforms: []string{"linux/amd64", "linux/arm64"}}
	b := Image{Context: ".", Dockerfile: "Dockerfile", Platforms: []string{"linux/arm64", "linux/amd64"}}
	if a.Key() != b.Key() {
		t.Errorf("platform order changes the key")
	}
}

func TestPlanFor(t *testing.T) {
	reg := Backend{Kind: config.CacheRegistry, Repository: "reg.example/cache"}
	ecr := Backend{Kind: config.CacheRegistry, Repository: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache"}
	s3 := Backend{Kind: config.CacheS3, S3: S3Backend{Bucket: "bk", Region: "eu-west-1", Prefix: "buildkit/"}}
	s3compat := Backend{Kind: config.CacheS3, S3: S3Backend{Bucket: "bk", Prefix: "p/", EndpointURL: "http://127.0.0.1:9000"}}
	local := Backend{Kind: config.CacheLocal, LocalDir: "/var/lib/dockhand/cache"}
	img := Image{Context: ".", Dockerfile: "Dockerfile"}
	k := img.Key()
	branch := Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main", PullRequest: "false"}
	onMain := Identity{Pipeline: "web", Branch: "main", DefaultBranch: "main", PullRequest: "false"}
	pr := Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main", PullRequest: "12", Repo: "git@github.com:acme/web.git", PullRequestRepo: "https://github.com/acme/web"}
	fork := pr
	fork.PullRequestRepo = "https://github.com/mallory/web"
	regFrom := func(tag string) string { return "type=registry,ref=reg.example/cache/web:" + k + "-" + tag }
	regTo := func(tag string) string { return regFrom(tag) + ",mode=max,ignore-error=true" }
	for _, tc := range []struct {
		name     string
		id       Identity
		b        Backend
		readOnly string
		from, to []string
		ro, err  string
	}{
		{"branch", branch, reg, "", []string{regFrom("dev"), regFrom("main")}, []string{regTo("dev")}, "", ""},
		{"default branch", onMain, reg, "", []string{regFrom("main")}, []string{regTo("main")}, "", ""},
		{"no default branch", Identity{Pipeline: "web", Branch: "dev"}, reg, "", []string{regFrom("dev")}, []string{regTo("dev")}, "", ""},
		{"pull request writes only its ref", pr, reg, "", []string{regFrom("pr-12"), regFrom("dev"), regFrom("main")}, []string{regTo("pr-12")}, "", ""},
		{"fork is read-only", fork, reg, "", []string{regFrom("pr-12"), regFrom("dev"), regFrom("main")}, nil, "a pull request from a fork", ""},
		{"builder cannot export", branch, reg, "docker driver", []string{regFrom("dev"), regFrom("main")}, nil, "docker driver", ""},
		{"no branch: read the default only", Identity{Pipeline: "web", DefaultBranch: "main"}, reg, "", []string{regFrom("main")}, nil, "the build's branch is unknown", ""},
		{"slashes in the branch", Identity{Pipeline: "web", Branch: "feature/a", DefaultBranch: "main"}, reg, "",
			[]string{regFrom(SanitizeTag("feature/a", 115)), regFrom("main")}, []string{regTo(SanitizeTag("feature/a", 115))}, "", ""},
		{"ecr", branch, ecr, "",
			[]string{"type=registry,ref=123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web:" + k + "-dev",
				"type=registry,ref=123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web:" + k + "-main"},
			[]string{"type=registry,ref=123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web:" + k + "-dev,mode=max,ignore-error=true,image-manifest=true,oci-mediatypes=true"}, "", ""},
		{"s3", branch, s3, "",
			[]string{"type=s3,bucket=bk,region=eu-west-1,prefix=buildkit/web/,name=" + k + "-dev", "type=s3,bucket=bk,region=eu-west-1,prefix=buildkit/web/,name=" + k + "-main"},
			[]string{"type=s3,bucket=bk,region=eu-west-1,prefix=buildkit/web/,name=" + k + "-dev,mode=max,ignore-error=true"}, "", ""},
		{"s3-compatible endpoint", onMain, s3compat, "",
			[]string{"type=s3,bucket=bk,prefix=p/web/,endpoint_url=http://127.0.0.1:9000,use_path_style=true,name=" + k + "-main"},
			[]string{"type=s3,bucket=bk,prefix=p/web/,endpoint_url=http://127.0.0.1:9000,use_path_style=true,name=" + k + "-main,mode=max,ignore-error=true"}, "", ""},
		{"local", branch, local, "",
			[]string{"type=local,src=/var/lib/dockhand/cache/web,tag=" + k + "-dev", "type=local,src=/var/lib/dockhand/cache/web,tag=" + k + "-main"},
			[]string{"type=local,dest=/var/lib/dockhand/cache/web,tag=" + k + "-dev,mode=max,ignore-error=true"}, "", ""},
		{"no pipeline", Identity{Branch: "dev"}, reg, "", nil, nil, "", "pipeline slug"},
		{"no branch at all", Identity{Pipeline: "web"}, reg, "", nil, nil, "", "neither the branch"},
		{"unusable backend", branch, Backend{Kind: config.CacheRegistry}, "", nil, nil, "", "cache.repository is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanFor(tc.id, tc.b, img, tc.readOnly)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("PlanFor err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.From, tc.from) || !slices.Equal(p.To, tc.to) {
				t.Errorf("PlanFor:\n from %q\n want %q\n to   %q\n want %q", p.From, tc.from, p.To, tc.to)
			}
			if !strings.Contains(p.ReadOnly, tc.ro) || (tc.ro == "") != (p.ReadOnly == "") {
				t.Errorf("ReadOnly = %q, want %q", p.ReadOnly, tc.ro)
			}
			if len(p.FromRefs) != len(p.From) || len(p.ToRefs) != len(p.To) || p.Key != k {
				t.Errorf("refs/key do not match the flags: %+v", p)
			}
			// A pull request or a fork never writes the default branch's ref.
			if tc.id.IsPullRequest() {
				for _, to := range p.To {
					if strings.Contains(to, k+"-main") {
						t.Errorf("pull request writes the default branch's cache: %s", to)
					}
				}
			}
		})
	}
}

func TestCSVQuoting(t *testing.T) {
	got := csv("type=local", "src=/a,b/c", `dest=/x"y`, "tag=t")
	want := `type=local,"src=/a,b/c","dest=/x""y",tag=t`
	if got != want {
		t.Errorf("csv = %s, want %s", got, want)
	}
}
