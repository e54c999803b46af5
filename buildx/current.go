package buildx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dockhand-ci/dockhand/internal/filelock"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// The buildx store's record of the selected builder (docker/buildx
// store.current): plain encoding/json, so the field names are the Go ones.
type currentFile struct {
	Key    string
	Name   string
	Global bool
}

// BuilderVar is buildx's default for --builder. dockhand never sets it (its
// builder is the job store's current builder); the shim reads it as buildx
// does.
const BuilderVar = "BUILDX_BUILDER"

// DefaultDockerHost is the docker CLI's endpoint for the default context
// when DOCKER_HOST is unset.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// StoreDir is the buildx store dir buildx uses for an environment:
// $BUILDX_CONFIG, else $DOCKER_CONFIG/buildx, else ~/.docker/buildx.
func StoreDir(lookup func(string) string) string {
	if d := lookup("BUILDX_CONFIG"); d != "" {
		return d
	}
	if d := dockerConfigDir(lookup); d != "" {
		return filepath.Join(d, "buildx")
	}
	return ""
}

// dockerConfigDir is the docker CLI's config dir: $DOCKER_CONFIG, else
// ~/.docker.
func dockerConfigDir(lookup func(string) string) string {
	if d := lookup("DOCKER_CONFIG"); d != "" {
		return d
	}
	if h := lookup("HOME"); h != "" {
		return filepath.Join(h, ".docker")
	}
	return ""
}

// DockerContext is the docker context the docker CLI uses in an environment
// (without -H or --context flags): "default" when DOCKER_HOST is set, else
// DOCKER_CONTEXT, else config.json's currentContext, else "default".
func DockerContext(lookup func(string) string) string {
	if lookup("DOCKER_HOST") != "" {
		return "default"
	}
	if c := lookup("DOCKER_CONTEXT"); c != "" {
		return c
	}
	if d := dockerConfigDir(lookup); d != "" {
		var cfg struct {
			CurrentContext string `json:"currentContext"`
		}
		if data, err := os.ReadFile(filepath.Join(d, "config.json")); err == nil && json.Unmarshal(data, &cfg) == nil && cfg.CurrentContext != "" {
			return cfg.CurrentContext
		}
	}
	return "default"
}

// CurrentKey is the key buildx files its current builder under
// (dockerutil.GetCurrentEndpoint): the docker context's name, or for the
// default context its endpoint, DOCKER_HOST or the default socket.
func CurrentKey(lookup func(string) string) string {
	if c := DockerContext(lookup); c != "default" {
		return c
	}
	if h := lookup("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultDockerHost
}

// defaultsName is the file under defaults/ that holds the builder set with
// `docker buildx use --default` for key: the first 20 hex digits of the
// key's sha256, as buildx names it.
func defaultsName(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:20]
}

// CurrentBuilder is the builder buildx selects in store for key when no
// --builder or BUILDX_BUILDER names one (store.Txn.Current): a global
// current builder that still exists; else the current builder filed under
// key (none if it is gone); else the default set for key with `buildx use
// --default`. "" means none: buildx then uses the docker context's own
// builder. It only reads; buildx itself rewrites `current` as it goes.
func CurrentBuilder(store, key string) string {
	exists := func(name string) bool {
		if !instanceName().MatchString(name) {
			return false
		}
		_, err := os.Stat(filepath.Join(store, "instances", strings.ToLower(name)))
		return err == nil
	}
	var cur currentFile
	if data, err := os.ReadFile(filepath.Join(store, "current")); err == nil && json.Unmarshal(data, &cur) == nil && cur.Name != "" {
		if cur.Global && exists(cur.Name) {
			return cur.Name
		}
		if cur.Key == key {
			if exists(cur.Name) {
				return cur.Name
			}
			return ""
		}
	}
	data, err := os.ReadFile(filepath.Join(store, "defaults", defaultsName(key)))
	if err != nil || !exists(string(data)) {
		return ""
	}
	return string(data)
}

// SelectedBuilderName is the builder a buildx command without --builder
// runs on: BUILDX_BUILDER (buildx's default for --builder), else the
// store's current builder, else the docker context's own builder, named
// after the context.
func SelectedBuilderName(lookup func(string) string) string {
	if name := lookup("BUILDX_BUILDER"); name != "" {
		return name
	}
	if store := StoreDir(lookup); store != "" {
		if name := CurrentBuilder(store, CurrentKey(lookup)); name != "" {
			return name
		}
	}
	return DockerContext(lookup)
}

// SetCurrent makes name the store's current builder for every docker context
// (as `docker buildx use --global` does), filed under key, atomically and
// under the store's lock. A step's own `docker buildx use` or
// `buildx create --use` replaces it, as it would replace any other. ctx ends
// the wait for the lock.
func SetCurrent(ctx context.Context, store, key, name string) error {
	if !instanceName().MatchString(name) {
		return fmt.Errorf("builder name %q is not a valid buildx instance name", name)
	}
	data, err := json.Marshal(currentFile{Key: key, Name: name, Global: true})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(store, 0o700); err != nil {
		return fmt.Errorf("creating the buildx store: %w", err)
	}
	release, err := filelock.Lock(ctx, filepath.Join(store, ".lock"), 0)
	if err != nil {
		return fmt.Errorf("locking the buildx store: %w", err)
	}
	defer release()
	return safefile.Write(filepath.Join(store, "current"), data)
}
