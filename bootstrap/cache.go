package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/joblog"
	"github.com/dockhand-ci/dockhand/internal/safefile"
	"github.com/dockhand-ci/dockhand/jobstate"
)

// cacheSettings is what the job's buildx shim injects cache flags from: the
// queue's [cache] settings and the job's identity as the agent gave it,
// recorded before any job code runs. It returns nil, and why, when there is
// nothing to inject.
func cacheSettings(c *config.Config, e *agentenv.Environment) (*jobstate.CacheSettings, string) {
	if c.Cache.Mode == config.CacheOff {
		return nil, fmt.Sprintf("off (cache.mode from %s)", c.Sources["cache.mode"])
	}
	lookup := config.Getter(e)
	s := &jobstate.CacheSettings{
		Mode: c.Cache.Mode,
		Backend: cachekey.Backend{
			Kind:       c.Cache.Backend,
			Repository: c.Cache.Repository,
			S3: cachekey.S3Backend{
				Bucket: c.Cache.S3.Bucket, Region: c.Cache.S3.Region,
				Prefix: c.Cache.S3.Prefix, EndpointURL: c.Cache.S3.EndpointURL,
			},
			LocalDir: c.Cache.Local.Dir,
		},
		Identity: cachekey.IdentityFromEnv(lookup),
		Strict:   c.Strict,
		Debug:    c.Debug,
	}
	if err := s.Backend.Usable(); err != nil {
		return nil, "not configured: " + err.Error()
	}
	return s, ""
}

// prepareCache resolves the job's cache settings and readies the local
// backend's dir. It returns the settings for the job state (nil: nothing to
// inject) and the lines for the job log section. A local dir that cannot be
// made turns injection off with a warning: the build runs without cache.
//
// On ECR, ensureRepo makes the pipeline's repository; a failure is a warning
// (the export fails on its own, ignored, and the build runs).
func prepareCache(c *config.Config, e *agentenv.Environment, now time.Time, ensureRepo ensureRepoFunc) (*jobstate.CacheSettings, []joblog.Line) {
	s, why := cacheSettings(c, e)
	lines := []joblog.Line{{Text: cacheNote(s, why)}}
	if s != nil && s.Backend.Kind == config.CacheRegistry && cachekey.IsECR(s.Backend.Repository) && ensureRepo != nil && s.Identity.Pipeline != "" {
		repo := s.Backend.PipelineRepository(s.Identity.Pipeline)
		st, err := ensureRepo(repo, c.Cache.MaxAgeDays)
		switch {
		case err != nil:
			lines = append(lines, joblog.Warningf("cache repository %s: %v (cache export may fail; builds run anyway)", repo, err))
		default:
			if l := st.line(repo, c.Cache.MaxAgeDays, now); l.Text != "" {
				lines = append(lines, l)
			}
			if slices.Contains(st.Missing, cloud.ECRCreateRepository) {
				return nil, lines // nowhere to read or write: the builds run as without dockhand
			}
		}
	}
	if s == nil || s.Backend.Kind != config.CacheLocal {
		return s, lines
	}
	note, err := prepareLocalCache(s, c.Cache.Local.MaxSize, now)
	if err != nil {
		return nil, append(lines, joblog.Warningf("cache not injected: %v", err))
	}
	if note != "" {
		lines = append(lines, joblog.Line{Text: note})
	}
	return s, lines
}

// cacheNote describes the job's cache for the job log section.
func cacheNote(s *jobstate.CacheSettings, why string) string {
	if s == nil {
		return "cache: " + why
	}
	b := s.Backend
	where := ""
	switch b.Kind {
	case config.CacheRegistry:
		where = b.Repository
	case config.CacheS3:
		where = "s3://" + b.S3.Bucket + "/" + b.S3.Prefix
	case config.CacheLocal:
		where = b.LocalDir
	}
	id := s.Identity
	var access []string
	switch {
	case id.IsFork():
		access = append(access, "read-only: pull request from a fork")
	case id.IsPullRequest():
		access = append(access, "writes only pull request "+id.PullRequest+"'s refs")
	}
	note := fmt.Sprintf("cache: %s, %s backend at %s, pipeline %s, branch %s", s.Mode, b.Kind, where, id.Pipeline, id.Branch)
	if id.DefaultBranch != "" && id.DefaultBranch != id.Branch {
		note += " (falls back to " + id.DefaultBranch + ")"
	}
	if len(access) > 0 {
		note += "; " + strings.Join(access, "; ")
	}
	return note
}

// layout is one pipeline's OCI layout in the local cache dir.
type layout struct {
	name    string
	size    int64
	written time.Time
}

// PruneLocalCache keeps dir, the local backend's directory of one OCI layout
// per pipeline, under maxSize bytes: it removes whole layouts (nothing that
// is not one is counted or touched), least recently written first (index.json's time), never keep (this job's pipeline) and
// none written within grace of now (a job may be using it). It returns the
// names it removed and the size left.
func PruneLocalCache(dir, keep string, maxSize int64, now time.Time, grace time.Duration) ([]string, int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the local cache dir: %w", err)
	}
	var layouts []layout
	var total int64
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() || !isOCILayout(p) {
			continue // not a cache layout: never dockhand's to remove
		}
		l := layout{name: e.Name()}
		_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					l.size += fi.Size()
				}
			}
			return nil
		})
		if fi, err := os.Stat(filepath.Join(p, "index.json")); err == nil {
			l.written = fi.ModTime()
		} else if fi, err := os.Stat(p); err == nil {
			l.written = fi.ModTime()
		}
		total += l.size
		layouts = append(layouts, l)
	}
	slices.SortFunc(layouts, func(a, b layout) int { return a.written.Compare(b.written) })
	var evicted []string
	for _, l := range layouts {
		if total <= maxSize {
			break
		}
		if l.name == keep || now.Sub(l.written) < grace {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, l.name)); err != nil {
			return evicted, total, fmt.Errorf("evicting %s from the local cache: %w", l.name, err)
		}
		evicted = append(evicted, l.name)
		total -= l.size
	}
	return evicted, total, nil
}

// isOCILayout reports whether dir holds what every OCI layout BuildKit
// writes has: a regular index.json and a blobs/ dir (neither a symlink).
func isOCILayout(dir string) bool {
	idx, err := os.Lstat(filepath.Join(dir, "index.json"))
	if err != nil || !idx.Mode().IsRegular() {
		return false
	}
	blobs, err := os.Lstat(filepath.Join(dir, "blobs"))
	return err == nil && blobs.IsDir()
}

// prepareLocalCache makes the local backend's dir and keeps it bounded.
func prepareLocalCache(s *jobstate.CacheSettings, maxSize int64, now time.Time) (string, error) {
	dir := s.Backend.LocalDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the local cache dir: %w", err)
	}
	keep := filepath.Base(s.Backend.LocalCacheDir(s.Identity.Pipeline))
	evicted, left, err := PruneLocalCache(dir, keep, maxSize, now, 10*time.Minute)
	if err != nil {
		return "", err
	}
	if len(evicted) == 0 {
		return "", nil
	}
	return fmt.Sprintf("cache: evicted %s from %s to stay under cache.local.max_size (%d bytes left)",
		strings.Join(evicted, ", "), dir, left), nil
}

// ensureRepoFunc makes a registry cache repository ready, as far as the
// instance role allows, and says what the host knows of it.
type ensureRepoFunc func(repository string, maxAgeDays int) (repoState, error)

// deniedRetry is how long the host remembers that the instance role was
// denied what the cache repository needs before asking ECR again: a role
// is not changed every minute, and each job asking costs it a call.
const deniedRetry = time.Hour

// repoState is what the host knows of a cache repository: under the state
// dir, one file per repository, shared by the host's jobs.
type repoState struct {
	Want    string    `json:"want"` // the repository and max age it is for
	Created bool      `json:"created,omitempty"`
	Missing []string  `json:"missing,omitempty"` // IAM actions the instance role was denied
	At      time.Time `json:"at"`
	Asked   bool      `json:"-"` // this job asked ECR (not remembered)
}

// line is what the job log says of the repository: what was done when this
// job asked; once, as a warning, what the instance role lacks and what the
// cache does instead, then quietly for the jobs that follow while the
// denial is remembered; nothing (no text) when the host had it done
// already.
func (st repoState) line(repo string, days int, now time.Time) joblog.Line {
	create, lifecycle := slices.Contains(st.Missing, cloud.ECRCreateRepository), slices.Contains(st.Missing, cloud.ECRPutLifecyclePolicy)
	var l string
	switch {
	case create:
		l = fmt.Sprintf("cache: the ECR repository %s does not exist and the instance role may not create it (it lacks %s): "+
			"builds run without cache; grant %s (the Elastic CI Stack's ECRAccessPolicy full or a -pullthrough value) or create the repository",
			repo, cloud.ECRCreateRepository, cloud.ECRCreateRepository)
	case lifecycle:
		l = fmt.Sprintf("cache: the ECR repository %s has no expiry: the instance role may not put its lifecycle policy (it lacks %s); "+
			"cache is read and written, and kept until removed; grant %s (ECRAccessPolicy full) or put the policy yourself",
			repo, cloud.ECRPutLifecyclePolicy, cloud.ECRPutLifecyclePolicy)
	case !st.Asked:
		return joblog.Line{}
	case st.Created:
		return joblog.Notef("cache: created the ECR repository %s, expiring cache not written for %d days", repo, days)
	default:
		return joblog.Notef("cache: ECR repository %s has its lifecycle policy (%d days)", repo, days)
	}
	if st.Asked {
		return joblog.Line{Severity: joblog.Warning, Text: l}
	}
	return joblog.Notef("%s (known to this host for %s; ECR is asked again after %s)", l, now.Sub(st.At).Round(time.Second), deniedRetry)
}

// ecrRepoEnsurer runs `dockhand-cloud ecr-cache-repo` for a repository at
// most once per host and lifecycle setting, and at most once per
// deniedRetry while the instance role lacks a permission: a file under the
// state dir remembers the outcome.
func ecrRepoEnsurer(jobCtx context.Context, stateDir, cloudPath string, e *agentenv.Environment, now func() time.Time) ensureRepoFunc {
	return func(repository string, days int) (repoState, error) {
		sum := sha256.Sum256([]byte(repository))
		marker := filepath.Join(stateDir, "cache-repos", hex.EncodeToString(sum[:16]))
		want := fmt.Sprintf("%s max_age_days=%d", repository, days)
		var known repoState
		if data, err := os.ReadFile(marker); err == nil && json.Unmarshal(data, &known) == nil && known.Want == want &&
			(len(known.Missing) == 0 || now().Sub(known.At) < deniedRetry) {
			return known, nil
		}
		ctx, cancel := context.WithTimeout(jobCtx, 40*time.Second)
		defer cancel()
		var reply cloud.ECRCacheRepoReply
		req := cloud.ECRCacheRepoRequest{Repository: repository, MaxAgeDays: days}
		if err := cloud.Run(ctx, cloudPath, e.ToSlice(), cloud.ECRCacheRepo, req, &reply); err != nil {
			return repoState{}, err
		}
		st := repoState{Want: want, Created: reply.Created, Missing: reply.Missing, At: now(), Asked: true}
		if data, err := json.Marshal(st); err == nil && os.MkdirAll(filepath.Dir(marker), 0o700) == nil {
			_ = safefile.Write(marker, data)
		}
		return st, nil
	}
}
