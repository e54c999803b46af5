package builder

import (
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
)

func TestOlder(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"v0.11.6", "v0.12.0", true},
		{"v0.12.0", "v0.12.0", false},
		{"v0.34.2", "v0.12.0", false},
		{"v0.12.0-rc1", "v0.12.0", false}, // the suffix is not judged
		{"v0.9.3", "v0.12.0", true},
		{"dev", "v0.12.0", false},
		{"v0.0.0+unknown", "v0.12.0", false}, // an unstamped build is not judged
		{"0.11.0", "v0.12.0", false},
	} {
		if got := older(tc.a, tc.b); got != tc.want {
			t.Errorf("older(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestVersionWarnings(t *testing.T) {
	b := buildx.Builder{Name: buildx.RemoteName, Nodes: []buildx.Node{{Endpoint: "tcp://a:1"}, {Endpoint: "tcp://b:1"}, {Endpoint: "tcp://c:1"}}}
	res := func(vs ...string) map[string]cloud.ProbeResult {
		m := map[string]cloud.ProbeResult{}
		for i, v := range vs {
			ep := b.Nodes[i].Endpoint
			m[ep] = cloud.ProbeResult{Kind: cloud.ProbeBuildkit, Endpoint: ep, OK: true, Version: v}
		}
		return m
	}
	for _, tc := range []struct {
		name string
		in   map[string]cloud.ProbeResult
		want []string
	}{
		{"same, recent", res("v0.34.2", "v0.34.2", "v0.34.2"), nil},
		{"one old", res("v0.34.2", "v0.11.6", "v0.34.2"), []string{
			"builder node tcp://b:1 runs BuildKit v0.11.6, older than the v0.12.0",
			"run different BuildKit versions (v0.34.2 on tcp://a:1, tcp://c:1; v0.11.6 on tcp://b:1)"}},
		{"mixed recent", res("v0.34.2", "v0.33.0", "v0.34.2"), []string{"run different BuildKit versions (v0.34.2 on tcp://a:1, tcp://c:1; v0.33.0 on tcp://b:1)"}},
		{"unknown versions", res("", "", ""), nil},
	} {
		got := VersionWarnings(b, tc.in)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %q, want %d warnings", tc.name, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %q, want it to contain %q", tc.name, got[i], w)
			}
		}
	}
}
