package bootstrap

import (
	"slices"

	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/registry"
)

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
