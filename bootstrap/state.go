package bootstrap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/safefile"
	"github.com/dockhand-ci/dockhand/registry"
)

// StateFile holds what the bootstrap resolved for the job, so the job's shell
// and hooks act on the same configuration without reading it again.
const StateFile = "job.json"

// JobState is the content of StateFile.
type JobState struct {
	ConfigPath string `json:"config_path,omitempty"` // the configuration file the bootstrap used
	Shell      string `json:"shell"`                 // the real shell `dockhand shell` execs
	RealBuildx string `json:"real_buildx,omitempty"`
	// Builder is the buildx builder chosen for the job (Kind "" when the
	// job runs without one of dockhand's).
	Builder JobBuilder `json:"builder"`
	// Cache is what the buildx shim injects cache flags from: nil when
	// the job has none to inject.
	Cache *buildx.CacheSettings `json:"cache,omitempty"`
	// Registry is what docker-credential-dockhand serves, so the helper,
	// run on every registry request of a build, parses no configuration.
	Registry *registry.Settings `json:"registry,omitempty"`
	Debug    bool               `json:"debug,omitempty"`
}

// RegistrySettings turns the configuration's [packages] and [registry]
// tables into what the credential helper serves; the bootstrap records them
// in the job state, and the helper outside a job takes them from here too.
func RegistrySettings(cfg *config.Config) registry.Settings {
	return registry.Settings{
		Static:      cfg.Registry.StaticCredentials(),
		ECRAliases:  cfg.Registry.ECRAliasMap(),
		NSCRAliases: cfg.Registry.NSCRAliasMap(),
		Packages:    cfg.Packages.Registries,
	}
}

// jobCredentials is how the job's config reaches dockhand's helper (see
// Credentials): credHelpers for the registries it can name, the ECR cache
// repository's among them, unless registry.creds_store asks for credsStore.
func jobCredentials(cfg *config.Config) Credentials {
	if cfg.Registry.CredsStore {
		return Credentials{Store: true}
	}
	extra := append(slices.Clone(cfg.Registry.ECRRegistries), cfg.Cache.Repository)
	return Credentials{Helpers: registry.NamedHosts(RegistrySettings(cfg), extra...)}
}

// JobBuilder is the builder recorded in the job state.
type JobBuilder struct {
	Kind     string `json:"kind,omitempty"`     // namespace, remote, local or embedded
	Name     string `json:"name,omitempty"`     // the buildx builder (BUILDX_BUILDER)
	Driver   string `json:"driver,omitempty"`   // remote, docker-container or docker
	Nodes    int    `json:"nodes,omitempty"`    // its node count (one per platform on a multi-node builder)
	Endpoint string `json:"endpoint,omitempty"` // the default node's endpoint
	// Retry is how the buildx shim runs a lost build again (nil: it does
	// not; it execs buildx as always).
	Retry *buildx.RetryPlan `json:"retry,omitempty"`
}

// WriteState records the job's state in its dir.
func WriteState(jobDir string, s JobState) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return safefile.Write(filepath.Join(jobDir, StateFile), data)
}

// ReadState reads the job's state.
func ReadState(jobDir string) (JobState, error) {
	var s JobState
	data, err := os.ReadFile(filepath.Join(jobDir, StateFile))
	if err != nil {
		return s, fmt.Errorf("reading the job state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("reading the job state %s: %w", filepath.Join(jobDir, StateFile), err)
	}
	return s, nil
}
