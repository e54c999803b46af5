package builder

import (
	"slices"
	"testing"

	"github.com/dockhand-ci/dockhand/config"
)

// TestEveryKindIsChosenBy: every kind the configuration accepts has its
// probes and plan here, and is probed and named in a fixed order.
func TestEveryKindIsChosenBy(t *testing.T) {
	for _, name := range config.BuilderKinds {
		if _, ok := kinds[name]; !ok {
			t.Errorf("builders accepts %q, which the choice does not know", name)
		}
		if !slices.Contains(kindNames, name) {
			t.Errorf("%q is not in kindNames", name)
		}
	}
	if len(kinds) != len(config.BuilderKinds) || len(kindNames) != len(kinds) {
		t.Errorf("kinds %d, kindNames %d, config.BuilderKinds %d", len(kinds), len(kindNames), len(config.BuilderKinds))
	}
}

// TestKindOf: each probe target is named for the kind that asked for it.
func TestKindOf(t *testing.T) {
	spec := Spec{
		Remote:   RemoteSpec{Endpoints: []string{"tcp://10.0.0.1:1234"}},
		Local:    LocalSpec{DockerHost: "unix:///var/run/docker.sock"},
		Embedded: EmbeddedSpec{Socket: "unix:///state/buildkitd/buildkitd.sock"},
		Order:    []string{config.BuilderRemote, config.BuilderEmbedded, config.BuilderLocal},
	}
	want := map[string]string{
		"tcp://10.0.0.1:1234":                    config.BuilderRemote,
		"unix:///var/run/docker.sock":            config.BuilderLocal,
		"unix:///state/buildkitd/buildkitd.sock": config.BuilderEmbedded,
	}
	ts := Targets(spec)
	if len(ts) != len(want) {
		t.Fatalf("targets %+v, want %d", ts, len(want))
	}
	for _, tg := range ts {
		if got := spec.KindOf(tg); got != want[tg.Endpoint] {
			t.Errorf("KindOf(%s) = %s, want %s", tg.Endpoint, got, want[tg.Endpoint])
		}
	}
}
