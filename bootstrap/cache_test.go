package bootstrap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/jobstate"
)

func TestCacheSettings(t *testing.T) {
	e := agentenv.FromSlice([]string{
		"BUILDKITE_JOB_ID=j", "BUILDKITE_PIPELINE_SLUG=web", "BUILDKITE_BRANCH=dev",
		"BUILDKITE_PIPELINE_DEFAULT_BRANCH=main", "BUILDKITE_PULL_REQUEST=9",
		"BUILDKITE_REPO=git@github.com:acme/web.git", "BUILDKITE_PULL_REQUEST_REPO=https://github.com/eve/web.git",
	})
	c := config.Default("")
	if s, why := cacheSettings(c, e); s != nil || !strings.Contains(why, "cache.repository is not set") {
		t.Errorf("defaults: %+v %q, want nothing to inject until a repository is set", s, why)
	}
	c.Cache.Repository = "reg.example/cache"
	c.Strict = true
	s, why := cacheSettings(c, e)
	if s == nil || why != "" {
		t.Fatalf("cacheSettings = nil, %q", why)
	}
	want := cachekey.Identity{Pipeline: "web", Branch: "dev", DefaultBranch: "main", PullRequest: "9",
		Repo: "git@github.com:acme/web.git", PullRequestRepo: "https://github.com/eve/web.git"}
	if s.Identity != want || s.Mode != "auto" || s.Backend.Kind != "registry" || s.Backend.Repository != "reg.example/cache" || !s.Strict {
		t.Errorf("cacheSettings = %+v", s)
	}
	note := cacheNote(s, "")
	for _, part := range []string{"auto, registry backend at reg.example/cache", "branch dev (falls back to main)", "read-only: pull request from a fork"} {
		if !strings.Contains(note, part) {
			t.Errorf("cacheNote = %q, want %q in it", note, part)
		}
	}
	c.Cache.Mode = config.CacheOff
	if s, why := cacheSettings(c, e); s != nil || !strings.HasPrefix(why, "off") {
		t.Errorf("mode off: %+v %q", s, why)
	}
}

func TestPruneLocalCache(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	layout := func(name string, size int, written time.Time) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "blobs", "sha256"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(p, "blobs", "sha256", "b"), make([]byte, size), 0o600)
		os.WriteFile(filepath.Join(p, "index.json"), []byte("{}"), 0o600)
		os.Chtimes(filepath.Join(p, "index.json"), written, written)
	}
	layout("oldest", 400, now.Add(-72*time.Hour))
	layout("old", 300, now.Add(-48*time.Hour))
	layout("mine", 500, now.Add(-96*time.Hour)) // the job's own pipeline: never
	layout("busy", 600, now.Add(-time.Minute))  // written within the grace period: never
	layout("recent", 100, now.Add(-2*time.Hour))
	os.WriteFile(filepath.Join(dir, "stray-file"), make([]byte, 10_000), 0o600) // not a layout

	evicted, left, err := PruneLocalCache(dir, "mine", 1300, now, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Left: mine 502, busy 602 and recent 102 bytes (each with index.json).
	if !slices.Equal(evicted, []string{"oldest", "old"}) || left != 1206 {
		t.Errorf("evicted %q, %d bytes left; want oldest and old, 1206", evicted, left)
	}
	for _, name := range []string{"oldest", "old"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still there", name)
		}
	}
	for _, name := range []string{"mine", "busy", "recent", "stray-file"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed: %v", name, err)
		}
	}
	// Under the bound: nothing goes.
	if evicted, _, err := PruneLocalCache(dir, "mine", 1<<20, now, 0); err != nil || len(evicted) != 0 {
		t.Errorf("under the bound: evicted %q, %v", evicted, err)
	}
	if _, _, err := PruneLocalCache(filepath.Join(dir, "missing"), "", 1, now, 0); err == nil {
		t.Errorf("a missing dir is not reported")
	}
}

func TestPrepareCacheLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	c := config.Default("")
	c.Cache.Backend, c.Cache.Local.Dir = config.CacheLocal, dir
	e := agentenv.FromSlice([]string{"BUILDKITE_PIPELINE_SLUG=web", "BUILDKITE_BRANCH=main"})
	s, lines := prepareCache(c, e, time.Now(), nil)
	if s == nil || len(lines) != 1 {
		t.Fatalf("prepareCache = %+v, %q", s, lines)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the local cache dir: %v %v, want a 0700 dir", fi, err)
	}
	// A dir that cannot be made: no injection, one warning, no failure.
	c.Cache.Local.Dir = "/proc/dockhand-cannot-create"
	s, lines = prepareCache(c, e, time.Now(), nil)
	if s != nil || len(lines) != 2 || lines[1].Severity != joblog.Warning || !strings.HasPrefix(lines[1].Text, "cache not injected: creating the local cache dir") {
		t.Errorf("unusable dir: %+v, %q", s, lines)
	}
}

// cloudEnsurer is an ecrRepoEnsurer on a stand-in dockhand-cloud speaking
// the wire format (package cloud): the request as JSON on stdin, the reply
// (by the shell case arms given) as JSON on stdout, a failure as one line on
// stderr. Each call is logged, one line, to the file it returns; the clock
// is *clock.
func cloudEnsurer(t *testing.T, arms string, clock *time.Time) (ensureRepoFunc, string) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	cloud := filepath.Join(dir, "dockhand-cloud")
	script := "#!/bin/sh\nreq=$(cat)\necho \"$* $req\" >> " + calls + "\ncase \"$req\" in\n" + arms + "\nesac\n"
	if err := os.WriteFile(cloud, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return ecrRepoEnsurer(t.Context(), filepath.Join(dir, "state"), cloud, agentenv.FromSlice([]string{"PATH=/usr/bin:/bin"}),
		func() time.Time { return *clock }), calls
}

func TestECRRepoEnsurer(t *testing.T) {
	clock := time.Now()
	ensure, calls := cloudEnsurer(t, "*fail*) echo 'dockhand-cloud ecr-cache-repo: ecr:CreateRepository: ServerException' >&2; exit 1;;\n"+
		"*) echo '{\"created\":true}';;", &clock)
	repo := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cache/web"
	st, err := ensure(repo, 14)
	if err != nil || !st.Asked || !st.Created || !strings.Contains(st.line(repo, 14, clock).Text, "created the ECR repository "+repo) {
		t.Fatalf("first ensure = %+v, %v", st, err)
	}
	if st, err := ensure(repo, 14); err != nil || st.Asked || st.line(repo, 14, clock).Text != "" {
		t.Errorf("second ensure on the host = %+v, %v; want nothing done, nothing said", st, err)
	}
	if _, err := ensure(repo, 30); err != nil {
		t.Errorf("changed max age: %v", err)
	}
	_, err = ensure(repo+"-fail", 14)
	if err == nil || err.Error() != "dockhand-cloud ecr-cache-repo: ecr:CreateRepository: ServerException" {
		t.Errorf("failing ensure: %v, want dockhand-cloud's last line", err)
	}
	data, _ := os.ReadFile(calls)
	want := `ecr-cache-repo {"repository":"` + repo + `","max_age_days":14}` + "\n" +
		`ecr-cache-repo {"repository":"` + repo + `","max_age_days":30}` + "\n" +
		`ecr-cache-repo {"repository":"` + repo + `-fail","max_age_days":14}` + "\n"
	if string(data) != want {
		t.Errorf("dockhand-cloud calls:\n%s\nwant\n%s", data, want)
	}
	// Only ECR repositories of the registry backend are ensured.
	c := config.Default("")
	c.Cache.Repository = "reg.example/cache"
	e := agentenv.FromSlice([]string{"BUILDKITE_PIPELINE_SLUG=web", "BUILDKITE_BRANCH=main"})
	called := false
	prepareCache(c, e, time.Now(), func(string, int) (repoState, error) { called = true; return repoState{}, nil })
	if called {
		t.Errorf("a non-ECR repository was ensured")
	}
	c.Cache.Repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache"
	var got string
	_, lines := prepareCache(c, e, time.Now(), func(r string, days int) (repoState, error) {
		got = fmt.Sprintf("%s %d", r, days)
		return repoState{}, errors.New("no credentials")
	})
	if got != "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web 14" {
		t.Errorf("ensured %q, want the pipeline's repository and max_age_days", got)
	}
	if len(lines) != 2 || lines[1].Severity != joblog.Warning || !strings.HasPrefix(lines[1].Text, "cache repository") || !strings.Contains(lines[1].Text, "no credentials") {
		t.Errorf("lines = %q, want one warning", lines)
	}
}

// TestECRRepoDeniedBacksOff: an instance role without ecr:CreateRepository
// (the stack's poweruser) is told once, as a warning naming the permission
// and what the cache does instead (nothing: the builds run uncached, not
// failing exports), and the host remembers it: the next jobs say it
// quietly without asking ECR, until deniedRetry has passed. A role without
// ecr:PutLifecyclePolicy keeps its cache, without expiry.
func TestECRRepoDeniedBacksOff(t *testing.T) {
	clock := time.Now()
	ensure, calls := cloudEnsurer(t, "*lifecycle*) echo '{\"created\":true,\"missing\":[\"ecr:PutLifecyclePolicy\"]}';;\n"+
		"*) echo '{\"created\":false,\"missing\":[\"ecr:CreateRepository\"]}';;", &clock)
	c := config.Default("")
	c.Cache.Repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache"
	job := func(pipeline string) (*jobstate.CacheSettings, []joblog.Line) {
		return prepareCache(c, agentenv.FromSlice([]string{"BUILDKITE_PIPELINE_SLUG=" + pipeline, "BUILDKITE_BRANCH=main"}), clock, ensure)
	}
	asked := func() int { data, _ := os.ReadFile(calls); return strings.Count(string(data), "\n") }

	s, lines := job("web")
	if s != nil || len(lines) != 2 || lines[1].Severity != joblog.Warning || !strings.HasPrefix(lines[1].Text, "cache: the ECR repository 123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web does not exist") ||
		!strings.Contains(lines[1].Text, "it lacks ecr:CreateRepository") || !strings.Contains(lines[1].Text, "builds run without cache") || !strings.Contains(lines[1].Text, "ECRAccessPolicy full") {
		t.Errorf("denied create: %+v, %q; want no cache and one warning naming the permission", s, lines)
	}
	clock = clock.Add(10 * time.Minute)
	s, lines = job("web")
	if s != nil || len(lines) != 2 || lines[1].Severity != joblog.Note || !strings.Contains(lines[1].Text, "known to this host for 10m0s") || asked() != 1 {
		t.Errorf("the next job: %+v, %q after %d calls; want it said quietly, remembered, ECR not asked", s, lines, asked())
	}
	clock = clock.Add(deniedRetry)
	if _, lines = job("web"); asked() != 2 || lines[1].Severity != joblog.Warning {
		t.Errorf("after %s: %d calls, %q; want ECR asked again", deniedRetry, asked(), lines)
	}
	s, lines = job("lifecycle")
	if s == nil || len(lines) != 2 || lines[1].Severity != joblog.Warning || !strings.HasPrefix(lines[1].Text, "cache: the ECR repository") || !strings.Contains(lines[1].Text, "has no expiry") ||
		!strings.Contains(lines[1].Text, "it lacks ecr:PutLifecyclePolicy") {
		t.Errorf("denied lifecycle policy: %+v, %q; want the cache on and one warning", s, lines)
	}
}
