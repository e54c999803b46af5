package bootstrap

import (
	"context"
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
	"github.com/dockhand-ci/dockhand/env"
)

func TestCacheSettings(t *testing.T) {
	e := agentenv.FromSlice([]string{
		"BUILDKITE_JOB_ID=j", "BUILDKITE_PIPELINE_SLUG=web", "BUILDKITE_BRANCH=dev",
		"BUILDKITE_PIPELINE_DEFAULT_BRANCH=main", "BUILDKITE_PULL_REQUEST=9",
		"BUILDKITE_REPO=git@github.com:acme/web.git", "BUILDKITE_PULL_REQUEST_REPO=https://github.com/eve/web.git",
	})
	c := env.Default("")
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
	c.Cache.Mode = env.CacheOff
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
	c := env.Default("")
	c.Cache.Backend, c.Cache.Local.Dir = env.CacheLocal, dir
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
	if s != nil || len(lines) != 2 || !strings.Contains(lines[1], "warning: cache not injected: creating the local cache dir") {
		t.Errorf("unusable dir: %+v, %q", s, lines)
	}
}

func TestECRRepoEnsurer(t *testing.T) {
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	cloud := filepath.Join(dir, "dockhand-cloud")
	// A stand-in speaking the wire format (package cloud): the request as
	// JSON on stdin, the reply as JSON on stdout, a failure as one line on
	// stderr.
	script := "#!/bin/sh\nreq=$(cat)\necho \"$* $req\" >> " + calls + "\n" +
		"case \"$req\" in *fail*) echo 'dockhand-cloud ecr-cache-repo: ecr:CreateRepository: AccessDenied' >&2; exit 1;; esac\n" +
		"echo '{\"created\":true}'\n"
	if err := os.WriteFile(cloud, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	ensure := ecrRepoEnsurer(context.Background(), filepath.Join(dir, "state"), cloud, agentenv.FromSlice([]string{"PATH=/usr/bin:/bin"}))
	repo := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cache/web"
	note, err := ensure(repo, 14)
	if err != nil || !strings.Contains(note, "created the ECR repository "+repo) {
		t.Fatalf("first ensure = %q, %v", note, err)
	}
	if note, err := ensure(repo, 14); err != nil || note != "" {
		t.Errorf("second ensure on the host = %q, %v; want nothing done", note, err)
	}
	if _, err := ensure(repo, 30); err != nil {
		t.Errorf("changed max age: %v", err)
	}
	_, err = ensure(repo+"-fail", 14)
	if err == nil || err.Error() != "dockhand-cloud ecr-cache-repo: ecr:CreateRepository: AccessDenied" {
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
	c := env.Default("")
	c.Cache.Repository = "reg.example/cache"
	e := agentenv.FromSlice([]string{"BUILDKITE_PIPELINE_SLUG=web", "BUILDKITE_BRANCH=main"})
	called := false
	prepareCache(c, e, time.Now(), func(string, int) (string, error) { called = true; return "", nil })
	if called {
		t.Errorf("a non-ECR repository was ensured")
	}
	c.Cache.Repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache"
	var got string
	_, lines := prepareCache(c, e, time.Now(), func(r string, days int) (string, error) {
		got = fmt.Sprintf("%s %d", r, days)
		return "", errors.New("no credentials")
	})
	if got != "123456789012.dkr.ecr.eu-west-1.amazonaws.com/build-cache/web 14" {
		t.Errorf("ensured %q, want the pipeline's repository and max_age_days", got)
	}
	if len(lines) != 2 || !strings.Contains(lines[1], "warning: cache repository") || !strings.Contains(lines[1], "no credentials") {
		t.Errorf("lines = %q, want one warning", lines)
	}
}
