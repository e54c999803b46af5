package bootstrap

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// CredsStore is dockhand's credential helper, as a docker config names it.
const CredsStore = "dockhand"

// Credentials is how the job's config.json reaches dockhand's credential
// helper. By default it names the helper in credHelpers for the registries
// dockhand serves that can be named, and nothing else: the job's own
// `docker login`s go where docker puts them without a credsStore
// (config.json's auths, 0600 in the 0700 job dir), so a docker CLI, crane,
// ko or kaniko given the job's config without dockhand's helper (in a
// container, say) finds the step's logins and pulls public images, as on
// the plain stack. Store (registry.creds_store) names it as credsStore
// instead: every registry, at that cost.
type Credentials struct {
	Helpers []string
	Store   bool
}

// carriedKeys are the settings of the agent user's own docker config that a
// job's config keeps: nothing that holds or points at credentials
// (auths, credsStore, credHelpers, HttpHeaders), nor anything that would
// shadow the job's plugins or builder (cliPluginsExtraDirs, aliases,
// currentContext).
var carriedKeys = map[string]bool{
	"proxies": true, "detachKeys": true, "plugins": true, "experimental": true, "features": true,
	"psFormat": true, "imagesFormat": true, "networksFormat": true, "pluginsFormat": true,
	"volumesFormat": true, "statsFormat": true, "serviceInspectFormat": true, "servicesFormat": true,
	"secretFormat": true, "configFormat": true, "nodesFormat": true, "tasksFormat": true,
}

// UserDockerConfig is what dockhand reads of the agent user's docker config.
type UserDockerConfig struct {
	Settings  map[string]json.RawMessage // the carried settings only
	ExtraDirs []string                   // cliPluginsExtraDirs, to find the real buildx
	// PluginDirs are where the user's docker finds CLI plugins before the
	// system dirs: ExtraDirs, then the config dir's cli-plugins.
	PluginDirs []string
}

// ParseUserDockerConfig keeps the non-secret settings of a docker
// config.json. An empty input is an empty config.
func ParseUserDockerConfig(data []byte) (UserDockerConfig, error) {
	var u UserDockerConfig
	if len(data) == 0 {
		return u, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return u, err
	}
	u.Settings = map[string]json.RawMessage{}
	for k, v := range all {
		if carriedKeys[k] {
			u.Settings[k] = v
		}
	}
	if raw, ok := all["cliPluginsExtraDirs"]; ok {
		_ = json.Unmarshal(raw, &u.ExtraDirs)
	}
	return u, nil
}

// JobConfig builds the job's config.json: the carried settings plus the
// way to dockhand's helper (hooks' logins and credHelpers are merged in
// later by Reconcile).
func JobConfig(u UserDockerConfig, c Credentials) ([]byte, error) {
	out := map[string]any{}
	for k, v := range u.Settings {
		out[k] = v
	}
	if c.Store {
		out["credsStore"] = CredsStore
	}
	if len(c.Helpers) > 0 {
		helpers := map[string]string{}
		for _, h := range c.Helpers {
			helpers[h] = CredsStore
		}
		out["credHelpers"] = helpers
	}
	return json.MarshalIndent(out, "", "\t")
}

// readUserDockerConfig reads ~/.docker/config.json of the agent user; a
// missing file is an empty config, a broken one a warning.
func readUserDockerConfig(dir string) (UserDockerConfig, error) {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return UserDockerConfig{}, nil
	}
	if err != nil {
		return UserDockerConfig{}, err
	}
	u, err := ParseUserDockerConfig(data)
	if err != nil {
		return UserDockerConfig{}, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	return u, nil
}

// SeedDockerConfig creates the job's DOCKER_CONFIG dir: config.json, the
// buildx shim in cli-plugins and an empty buildx store.
func SeedDockerConfig(dir string, u UserDockerConfig, c Credentials, self string) error {
	for _, d := range []string{dir, filepath.Join(dir, "cli-plugins"), filepath.Join(dir, "buildx")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	cfg, err := JobConfig(u, c)
	if err != nil {
		return err
	}
	if err := safefile.Write(filepath.Join(dir, "config.json"), cfg); err != nil {
		return err
	}
	if err := os.Symlink(self, filepath.Join(dir, "cli-plugins", buildx.PluginName)); err != nil {
		return fmt.Errorf("linking the buildx shim: %w", err)
	}
	return linkUserPlugins(filepath.Join(dir, "cli-plugins"), u.PluginDirs)
}

// linkUserPlugins links the agent user's own CLI plugins (docker compose
// installed in ~/.docker/cli-plugins, say) into the job's plugin dir, so the
// job finds every plugin it would find without dockhand. dirs are in docker's
// search order; the first plugin of a name wins, as in docker. buildx is the
// shim's; the system plugin dirs need no link (docker looks there itself).
func linkUserPlugins(jobPlugins string, dirs []string) error {
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue // no such dir: nothing to carry
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, "docker-") || name == buildx.PluginName || strings.HasPrefix(name, ".") {
				continue
			}
			fi, err := os.Stat(filepath.Join(d, name))
			if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				continue
			}
			err = os.Symlink(filepath.Join(d, name), filepath.Join(jobPlugins, name))
			if err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("linking the CLI plugin %s: %w", name, err)
			}
		}
	}
	return nil
}
