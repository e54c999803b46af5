// Package buildx is what docker buildx keeps on disk and how it reads it:
// the builder instance files, the store's current builder (buildx's own
// rule), the dirs it is found in as a docker CLI plugin, the node identity
// that keys a build context's uploads, and the names of the instances
// dockhand writes. It runs nothing and chooses nothing.
package buildx

import (
	"os"
	"path/filepath"
)

// PluginName is the file name docker looks for.
const PluginName = "docker-buildx"

// SystemPluginDirs are the docker CLI's system plugin directories on Linux,
// in its search order.
var SystemPluginDirs = []string{
	"/usr/local/lib/docker/cli-plugins",
	"/usr/local/libexec/docker/cli-plugins",
	"/usr/lib/docker/cli-plugins",
	"/usr/libexec/docker/cli-plugins",
}

// PluginDirs lists where the real buildx plugin may be, in the order docker
// itself would look when the job had no docker config of its own: the user's
// cliPluginsExtraDirs, the user's ~/.docker/cli-plugins, the system dirs.
func PluginDirs(extraDirs []string, userConfigDir string) []string {
	dirs := append([]string{}, extraDirs...)
	if userConfigDir != "" {
		dirs = append(dirs, filepath.Join(userConfigDir, "cli-plugins"))
	}
	return append(dirs, SystemPluginDirs...)
}

// FindReal returns the first executable docker-buildx in dirs that is not
// self (dockhand, which may be linked in as the shim), or "".
func FindReal(dirs []string, self string) string {
	for _, d := range dirs {
		p := filepath.Join(d, PluginName)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 || IsSelf(p, self) {
			continue
		}
		return p
	}
	return ""
}

// IsSelf reports whether path is the file self is (through any symlinks,
// or a hard link to it).
func IsSelf(path, self string) bool {
	if self == "" {
		return false
	}
	a, err := os.Stat(path)
	if err != nil {
		return false
	}
	b, err := os.Stat(self)
	return err == nil && os.SameFile(a, b)
}
