package cloud

import (
	"fmt"
	"time"
)

// HistoryRequest asks `dockhand-cloud history` for what a builder's nodes
// built since a time.
type HistoryRequest struct {
	Nodes []ProbeTarget `json:"nodes"`
	Since time.Time     `json:"since"`
}

// HistoryResponse is its answer: builds finished, and their steps, cached
// and in all, summed over the nodes.
type HistoryResponse struct {
	Builds      int      `json:"builds"`
	CachedSteps int      `json:"cached_steps"`
	TotalSteps  int      `json:"total_steps"`
	Errors      []string `json:"errors,omitempty"`
	// Records are the same builds one by one, oldest first, for the job
	// report (package report).
	Records []BuildRecord `json:"records,omitempty"`
}

// BuildRecord is one build from a node's BuildKit build history: what its
// record says (frontend attributes, exporters, step counts, times) and what
// its progress log, kept by BuildKit with the record, adds (context bytes,
// time in cached and executed steps, cache exports).
type BuildRecord struct {
	Node        string    `json:"node"` // the endpoint whose history holds it
	Ref         string    `json:"ref"`
	Target      string    `json:"target,omitempty"`     // --target
	Dockerfile  string    `json:"dockerfile,omitempty"` // the frontend's filename attribute
	Platforms   string    `json:"platforms,omitempty"`
	Images      []string  `json:"images,omitempty"` // the image exporter's names
	Push        bool      `json:"push,omitempty"`
	Digest      string    `json:"digest,omitempty"` // the exported image's manifest digest
	Created     time.Time `json:"created"`
	Completed   time.Time `json:"completed"`
	CachedSteps int       `json:"cached_steps"`
	TotalSteps  int       `json:"total_steps"`
	Error       string    `json:"error,omitempty"` // the build failed: its error, one line
	// CacheImports are the --cache-from entries BuildKit received.
	CacheImports []CacheEntry `json:"cache_imports,omitempty"`
	// CacheExports are the cache exports that ran (the progress log's
	// "exporting cache to …" steps), with their error if they failed.
	CacheExports []CacheExportStep `json:"cache_exports,omitempty"`
	ContextBytes int64             `json:"context_bytes"` // sent by the client for its local contexts (not the Dockerfile)
	CachedTime   time.Duration     `json:"cached_ns"`     // summed over the steps BuildKit marked CACHED
	ExecutedTime time.Duration     `json:"executed_ns"`   // summed over the steps that ran
	LogError     string            `json:"log_error,omitempty"`
}

// CacheEntry is one cache import: its type and where ("ref" of a
// registry, the name of an s3 or local entry). No other attribute is kept:
// they may hold credentials.
type CacheEntry struct {
	Type string `json:"type"`
	Ref  string `json:"ref"`
}

// CacheExportStep is one cache export the build ran.
type CacheExportStep struct {
	Name  string `json:"name"` // "exporting cache to registry"
	Error string `json:"error,omitempty"`
}

// Line is the job log's summary of what the job's builds took from the cache.
func (h HistoryResponse) Line(builder string) string {
	if h.Builds == 0 {
		return fmt.Sprintf("cache: no build finished on %s during this job", builder)
	}
	pct := 0
	if h.TotalSteps > 0 {
		pct = h.CachedSteps * 100 / h.TotalSteps
	}
	return fmt.Sprintf("cache: %d build(s) on %s during this job: BuildKit marked %d of %d steps CACHED (%d%%)",
		h.Builds, builder, h.CachedSteps, h.TotalSteps, pct)
}
