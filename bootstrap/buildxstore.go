package bootstrap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/internal/safefile"
)

// BuildxConfigVar names buildx's store dir when it is not
// $DOCKER_CONFIG/buildx.
const BuildxConfigVar = "BUILDX_CONFIG"

// hostStoreFiles are what a job's store takes from a host-level
// BUILDX_CONFIG: the builders (instances/), which one is selected (current,
// defaults/) and the daemon config `buildx create` reads. Not the node
// identity, activity or local build records, which are the job's own.
var hostStoreFiles = []string{"instances", "defaults", "current", "buildkitd.default.toml"}

// importHostStore copies the builders of the host-level buildx store from
// into the job's store to, so they stay usable by name in the job while
// dockhand's builder (written into to) is the current one. It copies
// regular files only, 0600, never over a file the job's store has (dockhand's
// builder and current one, once chosen), and returns how many builders it
// copied. The host store is only read: what the job creates stays in the job.
func importHostStore(from, to string) (int, error) {
	builders := 0
	for _, name := range hostStoreFiles {
		src := filepath.Join(from, name)
		fi, err := os.Lstat(src)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return builders, err
		case fi.Mode().IsRegular():
			if _, err := copyStoreFile(src, filepath.Join(to, name)); err != nil {
				return builders, err
			}
			continue
		case !fi.IsDir():
			continue
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return builders, err
		}
		if err := os.MkdirAll(filepath.Join(to, name), 0o700); err != nil {
			return builders, err
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			copied, err := copyStoreFile(filepath.Join(src, e.Name()), filepath.Join(to, name, e.Name()))
			if err != nil {
				return builders, err
			}
			if copied && name == "instances" {
				builders++
			}
		}
	}
	return builders, nil
}

// copyStoreFile copies src to dst unless dst exists, and says whether it did.
func copyStoreFile(src, dst string) (bool, error) {
	if _, err := os.Lstat(dst); err == nil {
		return false, nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return false, err
	}
	return true, safefile.Write(dst, data)
}

// adoptHostStore gives the job its own buildx store when the agent's
// environment points buildx at a host-level one (BUILDX_CONFIG): dockhand's
// builder lives in the job's store, which the job's BUILDX_CONFIG then
// names (exports), seeded with the host store's builders. It returns the
// job log's line, "" when there is no host store.
func adoptHostStore(e *agentenv.Environment, jobStore string) (string, error) {
	host, _ := e.Get(BuildxConfigVar)
	if host == "" || filepath.Clean(host) == jobStore {
		return "", nil
	}
	n, err := importHostStore(host, jobStore)
	if err != nil {
		return "", fmt.Errorf("copying the builders of %s=%s: %w", BuildxConfigVar, host, err)
	}
	return fmt.Sprintf("buildx: %s=%s is the host's store; the job uses its own (%s), with the %d builder(s) copied from it; builders the job creates stay in the job",
		BuildxConfigVar, host, jobStore, n), nil
}
