package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Versions names the releases of the components the kit has in more than one
// version. "" is the current one, .tools/bin/NAME; any other is the one
// test/tools/install.sh builds as .tools/bin/NAME-VERSION (a link to
// .tools/versions/NAME-VERSION/NAME, a dir of its own where it keeps its
// plain name).
type Versions struct {
	Agent   string // buildkite-agent
	Buildx  string // docker-buildx
	Compose string // docker-compose
}

// Stack is what the Elastic CI Stack installs: the agent it pins (the beta
// channel's v4 aside) and the buildx and compose plugins of its AMI.
var Stack = Versions{Agent: "3.137.0", Buildx: "0.34.1", Compose: "5.1.4"}

// String names the versions for test names (which become temp dir names,
// under the unix socket path limit): "current", "stack", or each one set.
func (v Versions) String() string {
	if v == Stack {
		return "stack"
	}
	var parts []string
	for _, c := range []struct{ name, version string }{{"agent", v.Agent}, {"buildx", v.Buildx}, {"compose", v.Compose}} {
		if c.version != "" {
			parts = append(parts, c.name+"-"+c.version)
		}
	}
	if len(parts) == 0 {
		return "current"
	}
	return strings.Join(parts, ",")
}

// VersionedTools are the binaries of the extra versions v names, which New
// requires beside Tools.
func (v Versions) VersionedTools() []string {
	var out []string
	for _, c := range []struct{ name, version string }{{"buildkite-agent", v.Agent}, {"docker-buildx", v.Buildx}, {"docker-compose", v.Compose}} {
		if c.version != "" {
			out = append(out, c.name+"-"+c.version)
		}
	}
	return out
}

// VersionedBin is the real file of component name at version ("" for the
// current one) in the tools dir bin, links resolved: the agent sets its
// BUILDKITE_BIN_PATH to the dir of the file it runs from, and a job's
// `buildkite-agent` must be the same agent there.
func VersionedBin(bin, name, version string) (string, error) {
	p := filepath.Join(bin, name)
	if version != "" {
		p += "-" + version
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w (run make tools)", name, version, err)
	}
	if fi, err := os.Stat(real); err != nil || fi.Mode()&0o111 == 0 || (version != "" && filepath.Base(real) != name) {
		return "", fmt.Errorf("%s is not an executable %s (run make tools)", real, name)
	}
	return real, nil
}
