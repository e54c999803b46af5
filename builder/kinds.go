package builder

import (
	"slices"

	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
)

// kind is one builder kind as the choice sees it: what it probes, and what
// the probe results make of it (an Option). What its set-up takes follows
// from the Option's State, in Select: Ready needs nothing, NeedsSetup is
// Namespace's nsc (builder/namespace), NeedsStart the host's buildkitd
// (builder/embedded). A new kind is one more value here.
type kind interface {
	// targets are the endpoints to probe for the kind.
	targets(spec Spec) []cloud.ProbeTarget
	// plan says whether and how the kind can be used; pure.
	plan(spec Spec, results Results, dockerUp bool) Option
}

type (
	remoteKind    struct{}
	namespaceKind struct{}
	localKind     struct{}
	embeddedKind  struct{}
)

// kinds are the builder kinds by their name in `builders`.
var kinds = map[string]kind{
	config.BuilderRemote:    remoteKind{},
	config.BuilderNamespace: namespaceKind{},
	config.BuilderLocal:     localKind{},
	config.BuilderEmbedded:  embeddedKind{},
}

// kindNames is the order in which the kinds' targets are probed and
// named; local, the host's engine, last.
var kindNames = []string{config.BuilderRemote, config.BuilderNamespace, config.BuilderEmbedded, config.BuilderLocal}

func (remoteKind) targets(spec Spec) []cloud.ProbeTarget {
	var ts []cloud.ProbeTarget
	for _, ep := range spec.Remote.AllEndpoints() {
		ts = append(ts, remoteTarget(spec.Remote, ep))
	}
	return ts
}

// Namespace's builders are set up by nsc, which says whether they work.
func (namespaceKind) targets(Spec) []cloud.ProbeTarget { return nil }

func (localKind) targets(spec Spec) []cloud.ProbeTarget {
	if spec.Local.DockerHost == "" {
		return nil
	}
	return []cloud.ProbeTarget{{Kind: cloud.ProbeDocker, Endpoint: spec.Local.DockerHost}}
}

func (embeddedKind) targets(spec Spec) []cloud.ProbeTarget {
	if spec.Embedded.Socket == "" {
		return nil
	}
	return []cloud.ProbeTarget{{Kind: cloud.ProbeBuildkit, Endpoint: spec.Embedded.Socket}}
}

// KindOf names the builder kind a probe target belongs to (remote when
// none claims it).
func (spec Spec) KindOf(t cloud.ProbeTarget) string {
	for _, name := range kindNames {
		if slices.ContainsFunc(kinds[name].targets(spec), func(o cloud.ProbeTarget) bool { return o.Key() == t.Key() }) {
			return name
		}
	}
	return config.BuilderRemote
}
