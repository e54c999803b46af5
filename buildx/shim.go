package buildx

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// RealPluginVar names the variable the bootstrap exports with the path of the
// real buildx plugin, so the shim need not search for it on every call.
const RealPluginVar = "DOCKHAND_REAL_BUILDX"

// ErrNoRealPlugin is returned when no real buildx plugin can be found.
var ErrNoRealPlugin = errors.New("the real docker-buildx plugin was not found")

// ShimTarget returns the real plugin the shim should exec: the recorded one,
// else the first found in the usual dirs. It is separated from Exec so it can
// be tested.
func ShimTarget(lookup func(string) string, self string) (string, error) {
	if p := lookup(RealPluginVar); p != "" {
		return p, nil
	}
	userConfig := ""
	if home := lookup("HOME"); home != "" {
		userConfig = home + "/.docker"
	}
	dirs := PluginDirs(nil, userConfig)
	if p := FindReal(dirs, self); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w (looked in %s)", ErrNoRealPlugin, strings.Join(dirs, ", "))
}

// Shim runs as the job's cli-plugins/docker-buildx: it never writes to stdout
// itself and replaces its process with the real plugin, so docker's plugin
// socket, signals and exit status stay exactly the real plugin's.
func Shim(args []string, environ []string, self string) error {
	lookup := func(k string) string {
		for i := len(environ) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(environ[i], k+"="); ok {
				return v
			}
		}
		return ""
	}
	real, err := ShimTarget(lookup, self)
	if err != nil {
		return err
	}
	argv := append([]string{real}, args...)
	if err := syscall.Exec(real, argv, environ); err != nil {
		return fmt.Errorf("running %s: %w", real, err)
	}
	return nil
}
