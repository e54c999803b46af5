package doctor

import (
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/builder"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
)

const (
	epA    = "tcp://10.0.1.5:1234"
	epB    = "tcp://10.0.1.6:1234"
	epC    = "tcp://10.0.1.7:1234"
	epArm  = "tcp://10.0.2.5:1234"
	docker = "unix:///var/run/docker.sock"
)

var tlsFiles = buildx.TLS{CA: "/etc/dockhand/ca.pem", Cert: "/etc/dockhand/client.pem", Key: "/etc/dockhand/client-key.pem"}

// spec is a queue with a two-node mTLS pool and the host's docker engine.
func spec(order ...string) builder.Spec {
	return builder.Spec{
		Order: order, Slug: "app", HostPlatform: "linux/amd64",
		Remote: builder.RemoteSpec{Endpoints: []string{epA, epB}, TLS: tlsFiles},
		Local:  builder.LocalSpec{DockerHost: docker},
	}
}

// probed is what the probes of s's targets found: down where down says why,
// up (BuildKit v0.34.2) elsewhere.
func probed(s builder.Spec, down map[string]string) (builder.Results, []cloud.ProbeResult) {
	rs, list := builder.Results{}, []cloud.ProbeResult{}
	for _, t := range builder.Targets(s) {
		r := cloud.ProbeResult{Kind: t.Kind, Endpoint: t.Endpoint, OK: true, Version: "v0.34.2"}
		if why, ok := down[t.Endpoint]; ok {
			r.OK, r.Version, r.Error = false, "", why
		}
		rs[t.Key()] = r
		list = append(list, r)
	}
	return rs, list
}

func TestWarnings(t *testing.T) {
	plain := spec(config.BuilderRemote)
	plain.Remote.TLS = buildx.TLS{}
	plain.Remote.Endpoints = []string{epA, "unix:///run/buildkit/buildkitd.sock"}
	ok := []cloud.ProbeResult{
		{Kind: cloud.ProbeBuildkit, Endpoint: epA, OK: true, Version: "v0.34.2"},
		{Kind: cloud.ProbeBuildkit, Endpoint: epB, OK: true, Version: "v0.33.0"},
		{Kind: cloud.ProbeBuildkit, Endpoint: epC, OK: true, Version: "v0.33.0"},
		{Kind: cloud.ProbeBuildkit, Endpoint: epArm, Version: "v0.1.0"}, // down: not compared
		{Kind: cloud.ProbeDocker, Endpoint: docker, OK: true, Version: "28.0.0"},
	}
	for _, tc := range []struct {
		name     string
		spec     builder.Spec
		buildctl string
		want     []string
	}{
		{"mTLS, same version", spec(config.BuilderRemote), "v0.34.2", []string{"v0.33.0"}},
		{"plaintext tcp warned, unix not", plain, "", []string{epA + " is plaintext tcp://"}},
		{"plaintext but remote not wanted", func() builder.Spec { s := plain; s.Order = []string{config.BuilderLocal}; return s }(), "", nil},
		{"no buildctl: no version check", spec(config.BuilderRemote), "", nil},
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
	s := spec(config.BuilderNamespace, config.BuilderRemote)
	res, list := probed(s, map[string]string{epB: "connection refused"})
	d := Diagnosis{Survey: builder.Survey{Spec: s, Targets: builder.Targets(s), Probes: builder.ProbeReport{Results: list}, Options: builder.Plan(s, res)}}
	if d.Chosen = builder.FirstUsable(d.Options); d.Chosen != 1 {
		t.Fatalf("FirstUsable = %d, want 1 (remote; namespace is not configured)", d.Chosen)
	}
	var text string
	for _, l := range d.Lines() {
		text += l.String() + "\n"
	}
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
	if j.Kind != config.BuilderRemote || j.State != "ready" || len(j.Options) != 2 || j.Options[0].State != "not configured" || len(j.Probes) != 3 || j.Probes[2].Kind != config.BuilderLocal {
		t.Errorf("JSON = %+v", j)
	}
	bare := builder.Spec{Order: []string{config.BuilderRemote}}
	none := Diagnosis{Survey: builder.Survey{Spec: bare, Options: builder.Plan(bare, nil)}, Chosen: -1}
	if j := none.JSON(); j.Kind != "" || j.Reason != "none configured" || j.Endpoints == nil || j.Probes == nil || j.Warnings == nil {
		t.Errorf("JSON with nothing configured = %+v", j)
	}
}
