// Package report tells what a job's builds on dockhand's builder did: the
// job report (JSON, docs/job-report.md), the build annotation the job adds
// to the Buildkite build page, and the operator's metrics line (CloudWatch
// Embedded Metric Format). Everything comes from what the bootstrap already
// has: its own setup timings and builder choice, and the BuildKit build
// history it reads once when the job has ended (`dockhand-cloud history`).
package report

import (
	"encoding/json"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/jobstate"
)

// Version is the job report's schema version (docs/job-report.md).
const Version = 1

// Report is the job report: one job, its builder and its builds.
type Report struct {
	Version int     `json:"version"`
	Job     Job     `json:"job"`
	Builder Builder `json:"builder"`
	Cache   Cache   `json:"cache"`
	SetupMS int64   `json:"setup_ms"` // the bootstrap's preparation, before the job ran
	// ECRAPICalls counts the ECR API requests dockhand made for the job
	// (token fetches by the credential helper, the cache repository check).
	ECRAPICalls int      `json:"ecr_api_calls"`
	Builds      []Build  `json:"builds"`
	Errors      []string `json:"errors,omitempty"` // nodes whose history could not be read
	// Retries are the builds that lost their node and ran again
	// (remote.retry_lost_builds).
	Retries []Retry `json:"retries,omitempty"`

	metricQueue string // the metrics line's Queue dimension (MetricQueue)
}

// Job identifies the job.
type Job struct {
	ID          string `json:"id"`
	Pipeline    string `json:"pipeline,omitempty"`
	Branch      string `json:"branch,omitempty"`
	PullRequest string `json:"pull_request,omitempty"` // the number; "" when not a pull request
	Fork        bool   `json:"fork,omitempty"`
	Queue       string `json:"queue,omitempty"`
}

// Builder is dockhand's builder choice.
type Builder struct {
	Kind     string   `json:"kind,omitempty"` // "" when the job ran without dockhand's builder
	Name     string   `json:"name,omitempty"`
	Nodes    []string `json:"nodes,omitempty"` // endpoints
	ChoiceMS int64    `json:"choice_ms"`
	// Fallbacks are the kinds tried before the chosen one that were down
	// or failed to set up.
	Fallbacks []string `json:"fallbacks,omitempty"`
	// ProbeFailures are the endpoints whose health probe failed, and why.
	ProbeFailures map[string]string `json:"probe_failures,omitempty"`
}

// Cache is the job's cache injection.
type Cache struct {
	Mode    string `json:"mode,omitempty"`    // "" when nothing was injected
	Backend string `json:"backend,omitempty"` // registry, s3, local
}

// Build is one build that finished on dockhand's builder during the job.
type Build struct {
	Name        string   `json:"name"` // the bake target, else the first image name, else the target, else the Dockerfile
	BakeTarget  string   `json:"bake_target,omitempty"`
	Target      string   `json:"target,omitempty"`
	Dockerfile  string   `json:"dockerfile,omitempty"`
	Platforms   string   `json:"platforms,omitempty"`
	Node        string   `json:"node"` // the node's endpoint
	NodeName    string   `json:"node_name,omitempty"`
	DurationMS  int64    `json:"duration_ms"`
	CachedMS    int64    `json:"cached_ms"`   // time in the steps BuildKit marked CACHED
	ExecutedMS  int64    `json:"executed_ms"` // time in the steps that ran
	CachedSteps int      `json:"cached_steps"`
	TotalSteps  int      `json:"total_steps"`
	CacheFrom   []string `json:"cache_from,omitempty"`
	// CacheTo is the cache ref the build wrote ("" when none).
	CacheTo string `json:"cache_to,omitempty"`
	// CacheWrite says what happened to the write: "written",
	// "written-pull-request" (to the pull request's own ref), "skipped-fork",
	// "failed", "none" (dockhand's cache was read, nothing was written) or
	// "" (the build's cache flags are not dockhand's).
	CacheWrite      string   `json:"cache_write,omitempty"`
	CacheWriteError string   `json:"cache_write_error,omitempty"`
	ContextBytes    int64    `json:"context_bytes"`
	Pushed          []Pushed `json:"pushed,omitempty"`
	Error           string   `json:"error,omitempty"`
}

// Retry is a build that lost its node mid-build and ran again on another.
type Retry struct {
	Lost   string `json:"lost"`            // the node lost
	Reason string `json:"reason"`          // the build's error there
	Node   string `json:"node,omitempty"`  // where it ran again ("": nowhere)
	Error  string `json:"error,omitempty"` // why the rerun failed too, when it did
}

// Pushed is an image ref a build pushed, with the manifest's digest.
type Pushed struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
}

// Cache write outcomes.
const (
	WriteDone        = "written"
	WritePullRequest = "written-pull-request"
	WriteSkippedFork = "skipped-fork"
	WriteFailed      = "failed"
	WriteNone        = "none"
)

// Inputs are what the bootstrap has when the job ends.
type Inputs struct {
	JobID, Queue string
	Queues       []string // the configuration's [queue.NAME] sections
	Identity     cachekey.Identity
	Cache        *jobstate.CacheSettings // nil: no cache injected
	Selection    *builder.Selection      // nil: no builder choice
	Setup        time.Duration
	History      cloud.HistoryResponse
	ECRAPICalls  int
	// JobBuilds are the job's own builds (JobBuilds): only their history
	// records are reported (a builder may be shared with other jobs and
	// pipelines), and a bake build is named by its target. None: no build
	// is reported.
	JobBuilds map[string]string
	// Retries are the job's lost builds run again (jobstate.ReadRetries).
	Retries []jobstate.Retry
}

// New makes the job report.
func New(in Inputs) Report {
	id := in.Identity
	r := Report{
		Version: Version,
		Job: Job{ID: in.JobID, Pipeline: id.Pipeline, Branch: id.Branch, Queue: in.Queue,
			Fork: id.IsPullRequest() && id.IsFork()},
		SetupMS:     in.Setup.Milliseconds(),
		ECRAPICalls: in.ECRAPICalls,
		Builds:      []Build{},
		Errors:      in.History.Errors,
		metricQueue: MetricQueue(in.Queue, in.Queues),
	}
	if id.IsPullRequest() {
		r.Job.PullRequest = strings.TrimSpace(id.PullRequest)
	}
	if in.Cache != nil {
		r.Cache = Cache{Mode: in.Cache.Mode, Backend: in.Cache.Backend.Kind}
	}
	names := map[string]string{}
	if s := in.Selection; s != nil {
		r.Builder.ChoiceMS = s.Took.Milliseconds()
		r.Builder.Fallbacks = fallbacks(s)
		started := map[string]bool{} // the embedded daemon this job started was down before, by design
		if s.Started != "" && s.Builder != nil {
			for _, n := range s.Builder.Nodes {
				started[n.Endpoint] = true
			}
		}
		for i, t := range s.Targets {
			if i < len(s.Probes.Results) && !s.Probes.Results[i].OK && !started[t.Endpoint] {
				if r.Builder.ProbeFailures == nil {
					r.Builder.ProbeFailures = map[string]string{}
				}
				r.Builder.ProbeFailures[RedactRef(t.Endpoint)] = s.Probes.Results[i].Error
			}
		}
		if b := s.Builder; b != nil {
			r.Builder.Kind, r.Builder.Name = b.Kind, b.Name
			for _, n := range b.Nodes {
				r.Builder.Nodes = append(r.Builder.Nodes, RedactRef(n.Endpoint))
				names[n.Endpoint] = n.Name
			}
		}
	}
	for _, rt := range in.Retries {
		r.Retries = append(r.Retries, Retry{Lost: RedactRef(rt.Lost), Reason: rt.Reason, Node: RedactRef(rt.Node), Error: rt.Error})
		if rt.Node != "" && names[rt.Node] == "" {
			names[rt.Node] = buildx.RetryName + "0"
		}
	}
	for _, rec := range in.History.Records {
		bake, ours := in.JobBuilds[rec.Ref]
		if !ours {
			continue
		}
		b := buildOf(rec, in.Cache, id)
		b.NodeName = names[rec.Node]
		if bake != "" {
			b.BakeTarget = bake
			b.Name = bake
		}
		r.Builds = append(r.Builds, b)
	}
	return r
}

// MetricQueue is the metrics line's Queue dimension for queue: itself when
// the configuration has a section for it, "default" for none, else "other".
// Every value is a CloudWatch metric series, so a queue name a job could
// choose must not make one.
func MetricQueue(queue string, configured []string) string {
	switch {
	case queue == "":
		return "default"
	case slices.Contains(configured, queue):
		return queue
	}
	return "other"
}

// fallbacks lists the kinds passed over before the chosen builder.
func fallbacks(s *builder.Selection) []string {
	var out []string
	for i, o := range s.Options {
		if s.Builder != nil && i >= s.Chosen {
			break
		}
		if o.State == builder.Down {
			out = append(out, o.Kind)
		}
	}
	return append(out, s.Fallbacks...)
}

// buildOf turns one history record into a report row.
func buildOf(rec cloud.BuildRecord, cache *jobstate.CacheSettings, id cachekey.Identity) Build {
	b := Build{
		Target: rec.Target, Dockerfile: rec.Dockerfile, Platforms: rec.Platforms,
		Node:        RedactRef(rec.Node),
		DurationMS:  rec.Completed.Sub(rec.Created).Milliseconds(),
		CachedMS:    rec.CachedTime.Milliseconds(),
		ExecutedMS:  rec.ExecutedTime.Milliseconds(),
		CachedSteps: rec.CachedSteps, TotalSteps: rec.TotalSteps,
		ContextBytes: rec.ContextBytes,
		Error:        rec.Error,
	}
	for _, img := range rec.Images {
		img = RedactRef(img)
		if b.Name == "" {
			b.Name = img
		}
		if rec.Push {
			b.Pushed = append(b.Pushed, Pushed{Ref: img, Digest: rec.Digest})
		}
	}
	switch {
	case b.Name != "":
	case rec.Target != "":
		b.Name = "target " + rec.Target
	case rec.Dockerfile != "":
		b.Name = rec.Dockerfile
	default:
		b.Name = rec.Ref
	}
	own := false
	for _, e := range rec.CacheImports {
		b.CacheFrom = append(b.CacheFrom, RedactRef(e.Ref))
		if cache != nil && ownRef(cache, id.Pipeline, e) {
			own = true
		}
	}
	if !own {
		return b
	}
	// dockhand's plan (cachekey.PlanFor) writes the first ref it reads:
	// the pull request's own, else the branch's.
	b.CacheWrite = WriteNone
	for _, x := range rec.CacheExports {
		if x.Error != "" {
			b.CacheWrite, b.CacheWriteError = WriteFailed, x.Error
			continue
		}
		b.CacheTo = b.CacheFrom[0]
		b.CacheWrite, b.CacheWriteError = WriteDone, ""
		if id.IsPullRequest() {
			b.CacheWrite = WritePullRequest
		}
		break
	}
	if len(rec.CacheExports) == 0 && id.IsPullRequest() && id.IsFork() {
		b.CacheWrite = WriteSkippedFork
	}
	return b
}

// ownRef reports whether a cache import is one of dockhand's: under the
// pipeline's place in the job's backend.
func ownRef(c *jobstate.CacheSettings, pipeline string, e cloud.CacheEntry) bool {
	b := c.Backend
	switch b.Kind {
	case config.CacheRegistry:
		return e.Type == config.CacheRegistry && strings.HasPrefix(e.Ref, b.PipelineRepository(pipeline)+":")
	case config.CacheS3:
		return e.Type == config.CacheS3 && strings.HasPrefix(e.Ref, "s3://"+b.S3.Bucket+"/"+b.S3.Prefix)
	case config.CacheLocal:
		return strings.HasPrefix(e.Ref, b.LocalCacheDir(pipeline))
	}
	return false
}

// CacheLine is the job log's closing cache line: what BuildKit marked
// CACHED in the job's own builds; "" when it built nothing on dockhand's
// builder.
func (r Report) CacheLine() string {
	if r.Builder.Kind == "" || len(r.Builds) == 0 {
		return ""
	}
	h := cloud.HistoryResponse{Builds: len(r.Builds)}
	for _, b := range r.Builds {
		h.CachedSteps += b.CachedSteps
		h.TotalSteps += b.TotalSteps
	}
	return h.Line(r.Builder.Name)
}

// CacheHitRatio is the share of the builds' steps BuildKit marked CACHED,
// and whether there were any steps.
func (r Report) CacheHitRatio() (float64, bool) {
	var cached, total int
	for _, b := range r.Builds {
		cached += b.CachedSteps
		total += b.TotalSteps
	}
	if total == 0 {
		return 0, false
	}
	return float64(cached) / float64(total), true
}

// ContextBytes sums the context bytes of the builds.
func (r Report) ContextBytes() int64 {
	var n int64
	for _, b := range r.Builds {
		n += b.ContextBytes
	}
	return n
}

// RedactRef removes any userinfo from a ref or URL: "https://u:p@host/x"
// becomes "https://host/x", "u:p@host/repo:tag" becomes "host/repo:tag". A
// digest ("repo@sha256:…") is not userinfo and stays.
func RedactRef(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = nil
			return u.String()
		}
		rest := s[i+3:]
		if at := strings.LastIndex(firstSegment(rest), "@"); at >= 0 {
			return s[:i+3] + rest[at+1:]
		}
		return s
	}
	seg := firstSegment(s)
	at := strings.LastIndex(seg, "@")
	if at < 0 {
		return s
	}
	after := s[at+1:]
	if isDigest(after) {
		return s
	}
	return after
}

func firstSegment(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return s
}

func isDigest(s string) bool {
	alg, hex, ok := strings.Cut(s, ":")
	return ok && (alg == "sha256" || alg == "sha384" || alg == "sha512") && len(hex) >= 32
}

// SortedEndpoints are the keys of a probe-failure map, sorted.
func SortedEndpoints(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// maxRefFile bounds a buildx ref file that JobBuilds reads: buildx writes a
// few hundred bytes of JSON.
const maxRefFile = 64 << 10

// JobBuilds reads the builds buildx ran in the job: buildx keeps one record
// per build in the job's docker config, buildx/refs/BUILDER/NODE/REF (JSON
// with the invoked target: "default" for `build`, the target's name for
// `bake`). It returns REF -> bake target ("" for a plain build); nil when
// there are none. The job can put anything there: only regular files of at
// most maxRefFile bytes are read, never through a link, and nothing else
// (a FIFO, a device) is opened.
func JobBuilds(dockerConfig string) map[string]string {
	refs := filepath.Join(dockerConfig, "buildx", "refs")
	for _, dir := range []string{filepath.Dir(refs), refs} {
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			return nil // missing, or a link the job made
		}
	}
	builders, _ := os.ReadDir(refs)
	var out map[string]string
	for _, b := range builders {
		if !b.IsDir() || strings.HasPrefix(b.Name(), "__") {
			continue
		}
		nodes, _ := os.ReadDir(filepath.Join(refs, b.Name()))
		for _, n := range nodes {
			if !n.IsDir() {
				continue
			}
			files, _ := os.ReadDir(filepath.Join(refs, b.Name(), n.Name()))
			for _, f := range files {
				if !f.Type().IsRegular() {
					continue
				}
				data, ok := readSmall(filepath.Join(refs, b.Name(), n.Name(), f.Name()), maxRefFile)
				if !ok {
					continue
				}
				var st struct{ Target string }
				json.Unmarshal(data, &st)
				if st.Target == "default" {
					st.Target = ""
				}
				if out == nil {
					out = map[string]string{}
				}
				out[f.Name()] = st.Target
			}
		}
	}
	return out
}

// readSmall reads the regular file at path, if it is one of at most max
// bytes: opened without following a link and without blocking (a FIFO put
// there since it was listed is not waited on).
func readSmall(path string, max int64) ([]byte, bool) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() || fi.Size() > max {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil || int64(len(data)) > max {
		return nil, false
	}
	return data, true
}
