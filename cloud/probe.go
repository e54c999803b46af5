package cloud

import (
	"fmt"
	"strings"
	"time"

	"github.com/dockhand-ci/dockhand/buildx"
)

// What a probe talks to.
const (
	ProbeBuildkit = "buildkit" // a buildkitd: ListWorkers with the BuildKit Go client
	ProbeDocker   = "docker"   // a docker daemon: GET /_ping and /version
)

// ProbeTarget is one endpoint to probe. It is the input of `dockhand-cloud
// probe`, which reads a ProbeRequest as JSON on stdin.
type ProbeTarget struct {
	Kind     string     `json:"kind"`
	Endpoint string     `json:"endpoint"`
	TLS      buildx.TLS `json:"tls"`
}

// Key identifies a target in the probe cache: the same endpoint probed with
// other TLS material is another target.
func (t ProbeTarget) Key() string {
	return strings.Join([]string{t.Kind, t.Endpoint, t.TLS.CA, t.TLS.Cert, t.TLS.Key, t.TLS.ServerName}, "\x00")
}

// SocketDenied begins a docker probe's error when this process's user may
// not use the engine's unix socket; the rest says why and what fixes it.
const SocketDenied = "permission denied: "

// ProbeResult is the outcome of probing one target.
type ProbeResult struct {
	Kind      string        `json:"kind"`
	Endpoint  string        `json:"endpoint"`
	OK        bool          `json:"ok"`
	Latency   time.Duration `json:"latency_ns"`
	Version   string        `json:"version,omitempty"`   // BuildKit (or docker) version
	Platforms []string      `json:"platforms,omitempty"` // the workers' platforms
	Error     string        `json:"error,omitempty"`     // why it is not healthy, one line
	At        time.Time     `json:"at"`                  // when it was probed
	// Active is how many builds the node was running (or holding in its
	// queue) when probed, from BuildKit's history of active builds.
	Active int `json:"active"`
	// LoadError says why Active is unknown (a node without the history
	// API, or one whose history failed); the node is then routed to as if
	// it had no load, never left out.
	LoadError string `json:"load_error,omitempty"`
	// Routed counts the jobs this host routed to the node since it was
	// probed (filled in by the Prober from its shared cache, never by the
	// probe): builds that the node may not show yet.
	Routed int `json:"-"`
}

// Load is the node's known load and whether it is known: its active builds
// plus the jobs this host sent it since the probe.
func (r ProbeResult) Load() (int, bool) {
	if r.Kind == ProbeBuildkit && r.OK && r.LoadError == "" {
		return r.Active + r.Routed, true
	}
	return 0, false
}

// Summary is the result in a few words: "ok 3ms, BuildKit v0.34.2" or
// "down after 1.5s: no answer within 1.5s".
func (r ProbeResult) Summary() string {
	if r.OK {
		s := "ok " + roundLatency(r.Latency).String()
		if r.Version != "" {
			if r.Kind == ProbeDocker {
				s += ", docker " + r.Version
			} else {
				s += ", BuildKit " + r.Version
			}
		}
		return s
	}
	if strings.HasPrefix(r.Error, SocketDenied) {
		// The kind's own line says why and what fixes it, once.
		return fmt.Sprintf("down after %s: %s", roundLatency(r.Latency), strings.TrimSuffix(SocketDenied, ": "))
	}
	return fmt.Sprintf("down after %s: %s", roundLatency(r.Latency), r.Error)
}

func roundLatency(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// ProbeRequest is what `dockhand-cloud probe` reads on stdin: the targets,
// and the moment by which every probe must have answered.
type ProbeRequest struct {
	Deadline time.Time     `json:"deadline"`
	Timeout  time.Duration `json:"timeout_ns"` // probe_timeout, for messages: the deadline is what binds
	Targets  []ProbeTarget `json:"targets"`
}

// ProbeResponse is what `dockhand-cloud probe` writes on stdout: one result
// per target, in the request's order.
type ProbeResponse struct {
	Results []ProbeResult `json:"results"`
}
