// Package jobstate is the contract between a job's processes: what the
// bootstrap resolved for the job (File: the configuration it used, the real
// shell and buildx, the builder it chose, the cache and registry settings),
// which `dockhand shell`, the buildx shim and the credential helper read
// instead of parsing the configuration again, and what the shim records for
// the job report (RetriesFile).
package jobstate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cachekey"
	"github.com/dockhand-ci/dockhand/internal/safefile"
	"github.com/dockhand-ci/dockhand/registry"
)

// File is the job state's name in the job dir.
const File = "job.json"

// State is the content of File.
type State struct {
	ConfigPath string `json:"config_path,omitempty"` // the configuration file the bootstrap used
	Shell      string `json:"shell"`                 // the real shell `dockhand shell` execs
	RealBuildx string `json:"real_buildx,omitempty"`
	// Builder is the buildx builder chosen for the job (Kind "" when the
	// job runs without one of dockhand's).
	Builder Builder `json:"builder"`
	// Cache is what the buildx shim injects cache flags from: nil when
	// the job has none to inject.
	Cache *CacheSettings `json:"cache,omitempty"`
	// Registry is what docker-credential-dockhand serves, so the helper,
	// run on every registry request of a build, parses no configuration.
	Registry *registry.Settings `json:"registry,omitempty"`
	Debug    bool               `json:"debug,omitempty"`
}

// Chosen is the builder dockhand chose for the job, nil when it chose none.
func (s *State) Chosen() *Builder {
	if s == nil || s.Builder.Kind == "" {
		return nil
	}
	return &s.Builder
}

// Builder is the builder dockhand chose for a job: the one description of
// it that the bootstrap, the shim and the job report share.
type Builder struct {
	Kind     string `json:"kind,omitempty"`     // namespace, remote, local or embedded
	Name     string `json:"name,omitempty"`     // the buildx instance, the job store's current builder
	Driver   string `json:"driver,omitempty"`   // remote, docker-container or docker
	Nodes    int    `json:"nodes,omitempty"`    // its node count (one per platform on a multi-node builder)
	Endpoint string `json:"endpoint,omitempty"` // the default node's endpoint
	// Retry is how the buildx shim runs a lost build again (nil: it does
	// not; it execs buildx as always).
	Retry *RetryPlan `json:"retry,omitempty"`
}

// CacheSettings is the cache part of the job state: the queue's [cache]
// settings and the job's identity, resolved by the bootstrap before any job
// code ran.
type CacheSettings struct {
	Mode     string            `json:"mode"`
	Backend  cachekey.Backend  `json:"backend"`
	Identity cachekey.Identity `json:"identity"`
	Strict   bool              `json:"strict,omitempty"`
	Debug    bool              `json:"debug,omitempty"`
}

// RetryPlan is what the shim needs to run a lost build again: the bootstrap
// records it when the job's builder is one node of the remote pool and other
// healthy nodes are left.
type RetryPlan struct {
	Endpoint string `json:"endpoint"` // the node the job's builder uses
	// Fallbacks are the pipeline's next healthy nodes, in its rendezvous
	// order, when the job was set up.
	Fallbacks []string   `json:"fallbacks"`
	TLS       buildx.TLS `json:"tls"` // for tcp:// nodes
	// On is remote.retry_lost_builds as the configuration file has it; a
	// step's DOCKHAND_RETRY_LOST_BUILDS overrides it per call.
	On bool `json:"on"`
	// ProbeCache and ProbeTTL are the host's probe cache, where a lost node
	// is marked down for the host's next jobs.
	ProbeCache string        `json:"probe_cache,omitempty"`
	ProbeTTL   time.Duration `json:"probe_ttl_ns,omitempty"`
}

// Write records the job's state in its dir (atomic, 0600).
func Write(jobDir string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return safefile.Write(filepath.Join(jobDir, File), data)
}

// Read reads the job state from its dir.
func Read(jobDir string) (State, error) {
	var s State
	data, err := os.ReadFile(filepath.Join(jobDir, File))
	if err != nil {
		return s, fmt.Errorf("reading the job state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("reading the job state %s: %w", filepath.Join(jobDir, File), err)
	}
	return s, nil
}
