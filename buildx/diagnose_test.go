package buildx

import (
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/env"
)

func TestWarnings(t *testing.T) {
	plain := baseSpec(env.BuilderRemote)
	plain.Remote.TLS = TLS{}
	plain.Remote.Endpoints = []string{epA, "unix:///run/buildkit/buildkitd.sock"}
	ok := []ProbeResult{
		{Kind: ProbeBuildkit, Endpoint: epA, OK: true, Version: "v0.34.2"},
		{Kind: ProbeBuildkit, Endpoint: epB, OK: true, Version: "v0.33.0"},
		{Kind: ProbeBuildkit, Endpoint: epC, OK: true, Version: "v0.33.0"},
		{Kind: ProbeBuildkit, Endpoint: epArm, Version: "v0.1.0"}, // down: not compared
		{Kind: ProbeDocker, Endpoint: docker, OK: true, Version: "28.0.0"},
	}
	for _, tc := range []struct {
		name     string
		spec     Spec
		buildctl string
		want     []string
	}{
		{"mTLS, same version", baseSpec(env.BuilderRemote), "v0.34.2", []string{"v0.33.0"}},
		{"plaintext tcp warned, unix not", plain, "", []string{epA + " is plaintext tcp://"}},
		{"plaintext but remote not wanted", func() Spec { s := plain; s.Order = []string{env.BuilderLocal}; return s }(), "", nil},
		{"no buildctl: no version check", baseSpec(env.BuilderRemote), "", nil},
	} {
		got := Warnings(tc.spec, ok, tc.buildctl)
		if len(got) != len(tc.want) {
			t.Errorf("%s: warnings %q, want %d", tc.name, got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: warning %q lacks %q", tc.name, got[i], w)
			}
		}
	}
	if v := ParseBuildctlVersion("buildctl github.com/moby/buildkit v0.34.2 8f16ac0\n"); v != "v0.34.2" {
		t.Errorf("ParseBuildctlVersion = %q", v)
	}
	if v := ParseBuildctlVersion("something else"); v != "" {
		t.Errorf("ParseBuildctlVersion(garbage) = %q", v)
	}
}

func TestDiagnosisTextAndJSON(t *testing.T) {
	spec := baseSpec(env.BuilderNamespace, env.BuilderRemote)
	targets := Targets(spec)
	res := results([]string{epA, docker}, map[string]string{epB: "connection refused"})
	d := Diagnosis{Spec: spec, Targets: targets, Options: Plan(spec, res), Chosen: 1}
	for _, tg := range targets {
		d.Probes.Results = append(d.Probes.Results, res.Of(tg))
	}
	text := strings.Join(d.Lines(), "\n")
	for _, want := range []string{
		`builder: remote "dockhand-remote" on ` + epA + " (ready)",
		"builder: not namespace: nsc not found",
		"builder: probe remote " + epB + ": down after 0s: connection refused",
		"builder: probe local " + docker + ": ok",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	j := d.JSON()
	if j.Kind != env.BuilderRemote || j.State != "ready" || len(j.Options) != 2 || j.Options[0].State != "not configured" || len(j.Probes) != 3 || j.Probes[2].Kind != env.BuilderLocal {
		t.Errorf("JSON = %+v", j)
	}
	none := Diagnosis{Spec: Spec{Order: []string{env.BuilderRemote}}, Options: Plan(Spec{Order: []string{env.BuilderRemote}}, nil), Chosen: -1}
	if j := none.JSON(); j.Kind != "" || j.Reason != "none configured" || j.Endpoints == nil || j.Probes == nil || j.Warnings == nil {
		t.Errorf("JSON with nothing configured = %+v", j)
	}
}
