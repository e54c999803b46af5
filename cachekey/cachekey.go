// Package cachekey is dockhand's cache-key policy, pure: the job's identity
// (pipeline, branch, pull request), the configured backend, an image's key,
// and the refs a build reads its cache from and writes it to (PlanFor). The
// shim renders a Plan as --cache-from/--cache-to flags; the bootstrap and the
// job report name the same refs.
package cachekey

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/registry/hosts"
)

// Identity is the job a cache belongs to: which pipeline, branch and pull
// request. The bootstrap records it in the job state before any job code
// runs, so a command that exports BUILDKITE_BRANCH cannot move its writes.
type Identity struct {
	Pipeline        string `json:"pipeline"`
	Branch          string `json:"branch,omitempty"`
	DefaultBranch   string `json:"default_branch,omitempty"`
	PullRequest     string `json:"pull_request,omitempty"` // the number, or "false"/"" when not a pull request
	Repo            string `json:"repo,omitempty"`
	PullRequestRepo string `json:"pull_request_repo,omitempty"`
	Checkout        string `json:"checkout,omitempty"` // BUILDKITE_BUILD_CHECKOUT_PATH: paths in keys are relative to it
}

// IdentityFromEnv reads the job's identity from its BUILDKITE_* variables.
func IdentityFromEnv(lookup func(string) string) Identity {
	return Identity{
		Pipeline:        lookup("BUILDKITE_PIPELINE_SLUG"),
		Branch:          lookup("BUILDKITE_BRANCH"),
		DefaultBranch:   lookup("BUILDKITE_PIPELINE_DEFAULT_BRANCH"),
		PullRequest:     lookup("BUILDKITE_PULL_REQUEST"),
		Repo:            lookup("BUILDKITE_REPO"),
		PullRequestRepo: lookup("BUILDKITE_PULL_REQUEST_REPO"),
		Checkout:        lookup("BUILDKITE_BUILD_CHECKOUT_PATH"),
	}
}

// IsPullRequest reports whether the build is a pull request's.
func (id Identity) IsPullRequest() bool {
	pr := strings.TrimSpace(id.PullRequest)
	return pr != "" && pr != "false"
}

// IsFork reports whether the build is a pull request from another repository
// than the pipeline's.
func (id Identity) IsFork() bool {
	return id.IsPullRequest() && id.PullRequestRepo != "" && NormalizeRepo(id.PullRequestRepo) != NormalizeRepo(id.Repo)
}

// NormalizeRepo reduces the spellings of one git remote to one string:
// https://github.com/Org/App.git, git@github.com:org/app and
// ssh://git@github.com:22/org/app all become github.com/org/app.
func NormalizeRepo(r string) string {
	s := strings.ToLower(strings.TrimSpace(r))
	scheme := false
	if i := strings.Index(s, "://"); i >= 0 {
		s, scheme = s[i+3:], true
	}
	if at := strings.LastIndex(s, "@"); at >= 0 && at < strings.IndexAny(s+"/", "/") {
		s = s[at+1:]
	}
	host, rest, _ := strings.Cut(s, "/")
	if h, port, ok := strings.Cut(host, ":"); ok {
		switch {
		case scheme && isDigits(port):
			host = h
		case !scheme: // scp-like host:path
			host, rest = h, strings.TrimPrefix(port+"/"+rest, "/")
		}
	}
	rest = strings.TrimSuffix(strings.Trim(rest, "/"), ".git")
	return strings.TrimSuffix(host+"/"+rest, "/")
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Backend is where cache refs live: the resolved [cache] settings.
type Backend struct {
	Kind       string    `json:"kind"`                 // registry, s3 or local
	Repository string    `json:"repository,omitempty"` // registry: refs are REPOSITORY/PIPELINE:TAG
	S3         S3Backend `json:"s3,omitzero"`
	LocalDir   string    `json:"local_dir,omitempty"` // local: refs are DIR/PIPELINE (an OCI layout), TAG
}

// S3Backend is the [cache.s3] table. Credentials are never part of it: the
// builder (or buildx, from the job's AWS credential chain) supplies them.
type S3Backend struct {
	Bucket      string `json:"bucket,omitempty"`
	Region      string `json:"region,omitempty"`
	Prefix      string `json:"prefix,omitempty"`
	EndpointURL string `json:"endpoint_url,omitempty"`
}

// Usable says why b cannot hold a cache, or nil when it can.
func (b Backend) Usable() error {
	switch b.Kind {
	case config.CacheRegistry:
		if b.Repository == "" {
			return errors.New("cache.repository is not set")
		}
		if err := checkRepository(b.Repository); err != nil {
			return fmt.Errorf("cache.repository: %w", err)
		}
	case config.CacheS3:
		if b.S3.Bucket == "" {
			return errors.New("cache.s3.bucket is not set")
		}
	case config.CacheLocal:
		if !path.IsAbs(b.LocalDir) {
			return fmt.Errorf("cache.local.dir %q is not an absolute path", b.LocalDir)
		}
	default:
		return fmt.Errorf("unknown cache backend %q", b.Kind)
	}
	return nil
}

// checkRepository accepts HOST[:PORT]/PATH without a tag, digest or scheme.
func checkRepository(r string) error {
	host, rest, ok := strings.Cut(r, "/")
	switch {
	case strings.Contains(r, "://"):
		return fmt.Errorf("%q has a scheme; want HOST/PATH", r)
	case !ok || host == "" || rest == "" || strings.HasSuffix(rest, "/"):
		return fmt.Errorf("%q is not HOST/PATH", r)
	case strings.ContainsAny(rest, ":@"):
		return fmt.Errorf("%q has a tag or digest; want a repository", r)
	case strings.ContainsAny(r, " \t,\"'"):
		return fmt.Errorf("%q contains a space, comma or quote", r)
	}
	return nil
}

// IsECR reports whether a repository (HOST/PATH) is in an Amazon ECR
// private registry.
func IsECR(repository string) bool {
	host, _, _ := strings.Cut(repository, "/")
	return hosts.Parse(host).Kind == hosts.ECR
}

// Image is what a build produces, for keying its cache: the bake target, the
// context, the Dockerfile, the stage and the platforms. Local paths are
// relative to the checkout so every agent computes the same key.
type Image struct {
	BakeTarget string
	Context    string
	Dockerfile string
	Target     string
	Platforms  []string
}

// Key is the image's short hash: 12 hex digits of SHA-256 over its parts.
func (img Image) Key() string {
	platforms := slices.Clone(img.Platforms)
	slices.Sort(platforms)
	h := sha256.New()
	for _, part := range []string{"dockhand-cache-v1", img.BakeTarget, img.Context, img.Dockerfile, img.Target, strings.Join(platforms, ",")} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Describe names the image for the job log.
func (img Image) Describe() string {
	var parts []string
	if img.BakeTarget != "" {
		parts = append(parts, "bake target "+img.BakeTarget)
	}
	parts = append(parts, "Dockerfile "+img.Dockerfile, "context "+img.Context)
	if img.Target != "" {
		parts = append(parts, "stage "+img.Target)
	}
	if len(img.Platforms) > 0 {
		parts = append(parts, "platform "+strings.Join(img.Platforms, ","))
	}
	return strings.Join(parts, ", ")
}

// maxTag is the longest tag a registry accepts.
const maxTag = 128

// SanitizeTag makes s a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most limit
// bytes). When anything had to change, a hash of s is appended so that two
// different inputs never share a result (feature/x and feature-x differ).
func SanitizeTag(s string, limit int) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			b.WriteRune(r)
		} else if !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), ".-")
	if out == s && len(out) <= limit && out != "" {
		return out
	}
	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:8]
	if room := limit - len(suffix) - 1; len(out) > room {
		out = out[:max(room, 0)]
	}
	out = strings.TrimRight(out, "-")
	if out == "" {
		return suffix
	}
	return out + "-" + suffix
}

// prTagPrefix starts every pull request's tag suffix. A branch whose tag
// would start with it too ("pr-12") gets a hash of its name appended, so a
// branch never shares a cache tag with a pull request.
const prTagPrefix = "pr-"

// branchTag is SanitizeTag for a branch name, outside the pull requests'
// "pr-" tags.
func branchTag(branch string, limit int) string {
	t := SanitizeTag(branch, limit)
	if !strings.HasPrefix(t, prTagPrefix) || t != branch {
		return t // unchanged names starting "pr-" are the only clash; changed ones carry a hash already
	}
	sum := sha256.Sum256([]byte(branch))
	suffix := hex.EncodeToString(sum[:])[:8]
	if room := limit - len(suffix) - 1; len(t) > room {
		t = strings.TrimRight(t[:max(room, 0)], "-")
	}
	return t + "-" + suffix
}

// pathComponent makes s a valid lower-case repository path component
// ([a-z0-9]+ separated by single '.', '_' or '-'), with a hash appended when
// anything had to change.
func pathComponent(s string) string {
	var b strings.Builder
	sep := true // at the start, a separator is not allowed
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			sep = false
		case !sep && (r == '.' || r == '_' || r == '-'):
			b.WriteRune(r)
			sep = true
		case !sep:
			b.WriteByte('-')
			sep = true
		}
	}
	out := strings.TrimRight(b.String(), "._-")
	if out == s && out != "" && len(out) <= 100 {
		return out
	}
	sum := sha256.Sum256([]byte(s))
	if len(out) > 90 {
		out = strings.TrimRight(out[:90], "._-")
	}
	if out == "" {
		return "p" + hex.EncodeToString(sum[:])[:8]
	}
	return out + "-" + hex.EncodeToString(sum[:])[:8]
}

// Plan is the cache flags for one image: where it reads from, in order,
// and where it writes (nothing when read-only).
type Plan struct {
	Key  string
	From []string // --cache-from values
	To   []string // --cache-to values
	// FromRefs and ToRefs name the same places for people.
	FromRefs, ToRefs []string
	// ReadOnly says why the plan writes nothing ("" when it writes).
	ReadOnly string
}

// PlanFor computes the cache flags of one image: --cache-from the branch's
// ref then the default branch's; --cache-to the branch's ref only, mode=max,
// ignore-error=true. A pull request reads its own ref, its branch's and the
// default branch's, and writes only its own; a fork's pull request writes
// nothing; so does a build whose builder cannot export (readOnly != "").
func PlanFor(id Identity, b Backend, img Image, readOnly string) (Plan, error) {
	if id.Pipeline == "" {
		return Plan{}, errors.New("the pipeline slug (BUILDKITE_PIPELINE_SLUG) is unknown")
	}
	if err := b.Usable(); err != nil {
		return Plan{}, err
	}
	key := img.Key()
	tag := func(suffix string) string { return key + "-" + suffix }
	room := maxTag - len(key) - 1
	var reads []string
	write := ""
	if id.IsPullRequest() {
		pr := tag(prTagPrefix + SanitizeTag(strings.TrimSpace(id.PullRequest), room-3))
		reads = append(reads, pr)
		write = pr
	}
	if id.Branch != "" {
		branch := tag(branchTag(id.Branch, room))
		reads = append(reads, branch)
		if write == "" {
			write = branch
		}
	}
	if id.DefaultBranch != "" {
		if def := tag(branchTag(id.DefaultBranch, room)); !slices.Contains(reads, def) {
			reads = append(reads, def)
		}
	}
	switch {
	case readOnly != "":
	case write == "":
		readOnly = "the build's branch is unknown"
	case id.IsFork():
		readOnly = "a pull request from a fork"
	}
	if readOnly != "" {
		write = ""
	}
	if len(reads) == 0 {
		return Plan{}, errors.New("neither the branch nor the default branch is known")
	}
	p := Plan{Key: key, ReadOnly: readOnly}
	for _, t := range reads {
		from, ref := b.from(id.Pipeline, t)
		p.From, p.FromRefs = append(p.From, from), append(p.FromRefs, ref)
	}
	if write != "" {
		to, ref := b.to(id.Pipeline, write)
		p.To, p.ToRefs = append(p.To, to), append(p.ToRefs, ref)
	}
	return p, nil
}

// PipelineRepository is the pipeline's repository in the registry backend:
// every cache ref of the pipeline is a tag of it.
func (b Backend) PipelineRepository(pipeline string) string {
	return b.Repository + "/" + pathComponent(pipeline)
}

// RegistryRef is the ref of one cache tag in the registry backend.
func (b Backend) RegistryRef(pipeline, tag string) string {
	return b.PipelineRepository(pipeline) + ":" + tag
}

// s3Attrs are the attributes every s3 cache entry of the pipeline carries.
func (b Backend) s3Attrs(pipeline string) []string {
	attrs := []string{"bucket=" + b.S3.Bucket}
	if b.S3.Region != "" {
		attrs = append(attrs, "region="+b.S3.Region)
	}
	attrs = append(attrs, "prefix="+b.S3.Prefix+pathComponent(pipeline)+"/")
	if b.S3.EndpointURL != "" {
		// S3-compatible servers are addressed by path, not by bucket host.
		attrs = append(attrs, "endpoint_url="+b.S3.EndpointURL, "use_path_style=true")
	}
	return attrs
}

// LocalCacheDir is the pipeline's OCI layout under the local backend's dir.
func (b Backend) LocalCacheDir(pipeline string) string {
	return path.Join(b.LocalDir, pathComponent(pipeline))
}

// from returns the --cache-from value reading tag, and a readable name.
func (b Backend) from(pipeline, tag string) (string, string) {
	switch b.Kind {
	case config.CacheS3:
		return csv(append([]string{"type=s3"}, append(b.s3Attrs(pipeline), "name="+tag)...)...),
			"s3://" + b.S3.Bucket + "/" + b.S3.Prefix + pathComponent(pipeline) + "/manifests/" + tag
	case config.CacheLocal:
		dir := b.LocalCacheDir(pipeline)
		return csv("type=local", "src="+dir, "tag="+tag), dir + ":" + tag
	default:
		ref := b.RegistryRef(pipeline, tag)
		return csv("type=registry", "ref="+ref), ref
	}
}

// exportAttrs are on every --cache-to: the whole build graph, and a failed
// export never fails the build.
var exportAttrs = []string{"mode=max", "ignore-error=true"}

// to returns the --cache-to value writing tag, and a readable name.
func (b Backend) to(pipeline, tag string) (string, string) {
	switch b.Kind {
	case config.CacheS3:
		attrs := append([]string{"type=s3"}, b.s3Attrs(pipeline)...)
		attrs = append(append(attrs, "name="+tag), exportAttrs...)
		return csv(attrs...), "s3://" + b.S3.Bucket + "/" + b.S3.Prefix + pathComponent(pipeline) + "/manifests/" + tag
	case config.CacheLocal:
		dir := b.LocalCacheDir(pipeline)
		return csv(append([]string{"type=local", "dest=" + dir, "tag=" + tag}, exportAttrs...)...), dir + ":" + tag
	default:
		ref := b.RegistryRef(pipeline, tag)
		attrs := append([]string{"type=registry", "ref=" + ref}, exportAttrs...)
		if IsECR(b.Repository) {
			// ECR rejects the index-style cache manifest; an older remote
			// BuildKit would still send it without these.
			attrs = append(attrs, "image-manifest=true", "oci-mediatypes=true")
		}
		return csv(attrs...), ref
	}
}

// csv joins key=value fields the way buildx parses them, quoting a field that
// holds a comma or a quote.
func csv(fields ...string) string {
	out := make([]string, len(fields))
	for i, f := range fields {
		if strings.ContainsAny(f, ",\"\n\r") || strings.TrimSpace(f) != f {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		out[i] = f
	}
	return strings.Join(out, ",")
}
