package builder

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dockhand-ci/dockhand/builder/embedded"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/cloud"
	"github.com/dockhand-ci/dockhand/config"
)

func TestRendezvousIsStableAndMinimallyDisruptive(t *testing.T) {
	nodes := []string{"tcp://10.0.1.1:1234", "tcp://10.0.1.2:1234", "tcp://10.0.1.3:1234", "tcp://10.0.1.4:1234", "tcp://10.0.1.5:1234"}
	reversed := slices.Clone(nodes)
	slices.Reverse(reversed)
	counts := map[string]int{}
	moved, total := 0, 2000
	for i := range total {
		slug := fmt.Sprintf("pipeline-%d", i)
		order := Rendezvous(slug, nodes)
		if !slices.Equal(order, Rendezvous(slug, reversed)) {
			t.Fatalf("%s: order depends on the input order", slug)
		}
		if len(order) != len(nodes) {
			t.Fatalf("%s: order %q lost nodes", slug, order)
		}
		counts[order[0]]++
		// Without node 2, pipelines on other nodes stay where they were, and
		// those on node 2 go to their second choice.
		without := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == nodes[2] })
		got := Rendezvous(slug, without)[0]
		switch {
		case order[0] == nodes[2]:
			moved++
			if got != order[1] {
				t.Fatalf("%s: node down, went to %s, want its second choice %s", slug, got, order[1])
			}
		case got != order[0]:
			t.Fatalf("%s: moved from %s to %s although its node is up", slug, order[0], got)
		}
	}
	for _, n := range nodes {
		share := float64(counts[n]) / float64(total)
		if math.Abs(share-0.2) > 0.05 {
			t.Errorf("node %s gets %.1f%% of pipelines, want about 20%%: %v", n, share*100, counts)
		}
	}
	if moved != counts[nodes[2]] {
		t.Errorf("%d pipelines moved, want exactly the %d on the removed node", moved, counts[nodes[2]])
	}
	if got := Rendezvous("x", nil); len(got) != 0 {
		t.Errorf("Rendezvous over no nodes = %q", got)
	}
}

// results makes probe results: every endpoint in ok answers, those in down
// fail with their reason. tcp:// targets carry tlsFiles, as Targets makes them.
func results(ok []string, down map[string]string) Results {
	rs := Results{}
	add := func(ep string, r cloud.ProbeResult) {
		r.Kind, r.Endpoint = cloud.ProbeBuildkit, ep
		if strings.Contains(ep, "docker.sock") {
			r.Kind = cloud.ProbeDocker
		}
		t := cloud.ProbeTarget{Kind: r.Kind, Endpoint: ep}
		if strings.HasPrefix(ep, "tcp://") {
			t.TLS = tlsFiles
		}
		rs[t.Key()] = r
	}
	for _, ep := range ok {
		add(ep, cloud.ProbeResult{OK: true, Version: "v0.34.2"})
	}
	for ep, why := range down {
		add(ep, cloud.ProbeResult{Error: why})
	}
	return rs
}

var tlsFiles = buildx.TLS{CA: "/etc/dockhand/ca.pem", Cert: "/etc/dockhand/client.pem", Key: "/etc/dockhand/client-key.pem"}

const (
	epA     = "tcp://10.0.1.5:1234"
	epB     = "tcp://10.0.1.6:1234"
	epC     = "tcp://10.0.1.7:1234"
	epArm   = "tcp://10.0.2.5:1234"
	epArm2  = "tcp://10.0.2.6:1234"
	docker  = "unix:///var/run/docker.sock"
	embSock = "unix:///var/lib/dockhand/buildkitd/buildkitd.sock"
)

func baseSpec(order ...string) Spec {
	return Spec{
		Order: order, Slug: "app", HostPlatform: "linux/amd64",
		Remote:    RemoteSpec{Endpoints: []string{epA, epB}, TLS: tlsFiles},
		Namespace: NamespaceSpec{},
		Local:     LocalSpec{DockerHost: docker},
		Embedded:  EmbeddedSpec{Socket: embSock, Buildkitd: "/usr/local/bin/buildkitd"},
	}
}

func TestPlan(t *testing.T) {
	appNode := Rendezvous("app", []string{epA, epB})[0]
	otherNode := map[string]string{epA: epB, epB: epA}[appNode]
	type want struct {
		kind      string
		state     State
		endpoints []string
		platforms [][]string
		driver    string
		name      string
		load      bool
		why       string // substring
	}
	for _, tc := range []struct {
		name    string
		spec    func() Spec
		results Results
		want    *want // nil: nothing usable
		states  []State
	}{
		{
			name:    "remote first, both healthy: the pipeline's node",
			spec:    func() Spec { return baseSpec(config.BuilderRemote, config.BuilderLocal) },
			results: results([]string{epA, epB, docker}, nil),
			want:    &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{appNode}, driver: buildx.DriverRemote, name: buildx.RemoteName, load: true, why: `pipeline "app" → ` + appNode + " (rendezvous over 2 of 2 healthy)"},
			states:  []State{Ready, Ready},
		},
		{
			name:    "the pipeline's node down: the other one",
			spec:    func() Spec { return baseSpec(config.BuilderRemote, config.BuilderLocal) },
			results: results([]string{otherNode, docker}, map[string]string{appNode: "connection refused"}),
			want:    &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{otherNode}, driver: buildx.DriverRemote, name: buildx.RemoteName, load: true, why: "1 of 2 healthy"},
		},
		{
			name:    "no docker daemon: no default-load",
			spec:    func() Spec { s := baseSpec(config.BuilderRemote); s.Local.DockerHost = ""; return s },
			results: results([]string{epA, epB}, nil),
			want:    &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{appNode}, driver: buildx.DriverRemote, name: buildx.RemoteName, load: false},
		},
		{
			name:    "docker daemon down: no default-load either",
			spec:    func() Spec { return baseSpec(config.BuilderRemote) },
			results: results([]string{epA, epB}, map[string]string{docker: "connection refused"}),
			want:    &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{appNode}, load: false, driver: buildx.DriverRemote, name: buildx.RemoteName},
		},
		{
			name:    "remote all down: falls to local",
			spec:    func() Spec { return baseSpec(config.BuilderRemote, config.BuilderLocal) },
			results: results([]string{docker}, map[string]string{epA: "connection refused", epB: "no answer within 1.5s"}),
			want:    &want{kind: config.BuilderLocal, state: Ready, endpoints: []string{docker}, driver: buildx.DriverDocker, name: "default", why: "its own builder"},
			states:  []State{Down, Ready},
		},
		{
			name:    "local is the engine's own builder, never a docker-container one",
			spec:    func() Spec { return baseSpec(config.BuilderLocal) },
			results: results([]string{docker}, nil),
			want:    &want{kind: config.BuilderLocal, state: Ready, endpoints: []string{docker}, driver: buildx.DriverDocker, name: "default", load: false, why: "its own builder"},
		},
		{
			name:    "local without a daemon is not configured; nothing usable",
			spec:    func() Spec { s := baseSpec(config.BuilderLocal); s.Local.DockerHost = ""; return s },
			results: Results{},
			states:  []State{NotConfigured},
		},
		{
			name:    "local daemon not answering is down",
			spec:    func() Spec { return baseSpec(config.BuilderLocal) },
			results: results(nil, map[string]string{docker: "connection refused"}),
			states:  []State{Down},
		},
		{
			name: "namespace configured comes first and needs setup",
			spec: func() Spec {
				s := baseSpec(config.BuilderNamespace, config.BuilderRemote)
				s.Namespace = NamespaceSpec{NSC: "/usr/bin/nsc", TenantID: "tnt", Auth: "oidc"}
				return s
			},
			results: results([]string{epA, epB}, nil),
			want:    &want{kind: config.BuilderNamespace, state: NeedsSetup, why: "tenant tnt"},
			states:  []State{NeedsSetup, Ready},
		},
		{
			name: "namespace without nsc is skipped",
			spec: func() Spec {
				s := baseSpec(config.BuilderNamespace, config.BuilderRemote)
				s.Namespace = NamespaceSpec{TenantID: "tnt"}
				return s
			},
			results: results([]string{epA, epB}, nil),
			want:    &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{appNode}, driver: buildx.DriverRemote, name: buildx.RemoteName},
			states:  []State{NotConfigured, Ready},
		},
		{
			name: "namespace without a tenant is skipped",
			spec: func() Spec {
				s := baseSpec(config.BuilderNamespace)
				s.Namespace = NamespaceSpec{NSC: "/usr/bin/nsc"}
				return s
			},
			results: Results{},
			states:  []State{NotConfigured},
		},
		{
			name: "embedded running is ready",
			spec: func() Spec {
				s := baseSpec(config.BuilderRemote, config.BuilderEmbedded)
				s.Remote = RemoteSpec{}
				return s
			},
			results: results([]string{embSock}, nil),
			want:    &want{kind: config.BuilderEmbedded, state: Ready, endpoints: []string{embSock}, driver: buildx.DriverRemote, name: buildx.EmbeddedName, why: "shared buildkitd"},
			states:  []State{NotConfigured, Ready},
		},
		{
			name:    "embedded not running needs a start",
			spec:    func() Spec { s := baseSpec(config.BuilderEmbedded); return s },
			results: results([]string{docker}, map[string]string{embSock: "no socket"}),
			want:    &want{kind: config.BuilderEmbedded, state: NeedsStart, endpoints: []string{embSock}, driver: buildx.DriverRemote, name: buildx.EmbeddedName, load: true, why: "starting"},
		},
		{
			name:    "embedded without buildkitd is down",
			spec:    func() Spec { s := baseSpec(config.BuilderEmbedded); s.Embedded.Buildkitd = ""; return s },
			results: results(nil, map[string]string{embSock: "no socket"}),
			states:  []State{Down},
		},
		{
			name: "unprivileged: embedded starts rootless",
			spec: func() Spec {
				s := baseSpec(config.BuilderEmbedded)
				s.Embedded.Rootless = &embedded.Rootless{Rootlesskit: "/usr/local/bin/rootlesskit", User: "buildkite-agent"}
				return s
			},
			results: results([]string{docker}, map[string]string{embSock: "no socket"}),
			want:    &want{kind: config.BuilderEmbedded, state: NeedsStart, endpoints: []string{embSock}, driver: buildx.DriverRemote, name: buildx.EmbeddedName, load: true, why: "rootless under /usr/local/bin/rootlesskit"},
		},
		{
			name: "unprivileged without what rootless needs: down, the next kind",
			spec: func() Spec {
				s := baseSpec(config.BuilderEmbedded, config.BuilderLocal)
				s.Embedded.Rootless = &embedded.Rootless{Rootlesskit: "/usr/local/bin/rootlesskit", User: "buildkite-agent", Problem: "newuidmap is not on PATH; install the uidmap package"}
				return s
			},
			results: results([]string{docker}, map[string]string{embSock: "no socket"}),
			want:    &want{kind: config.BuilderLocal, state: Ready, endpoints: []string{docker}, driver: buildx.DriverDocker, name: "default"},
			states:  []State{Down, Ready},
		},
		{
			name: "unprivileged, a daemon already up: ready whatever is missing to start one",
			spec: func() Spec {
				s := baseSpec(config.BuilderEmbedded)
				s.Embedded.Rootless = &embedded.Rootless{Problem: "rootlesskit is not on PATH"}
				return s
			},
			results: results([]string{embSock}, nil),
			want:    &want{kind: config.BuilderEmbedded, state: Ready, endpoints: []string{embSock}, driver: buildx.DriverRemote, name: buildx.EmbeddedName, why: "shared buildkitd"},
		},
		{
			name:    "remote with nothing configured is skipped",
			spec:    func() Spec { s := baseSpec(config.BuilderRemote); s.Remote = RemoteSpec{}; return s },
			results: Results{},
			states:  []State{NotConfigured},
		},
		{
			name: "per-platform nodes make one multi-node builder, pool node first",
			spec: func() Spec {
				s := baseSpec(config.BuilderRemote)
				s.Remote.Platforms = []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{epArm, epArm2}}}
				return s
			},
			results: results([]string{epA, epB, epArm, epArm2, docker}, nil),
			want: &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{appNode, Rendezvous("app", []string{epArm, epArm2})[0]},
				platforms: [][]string{nil, {"linux/arm64"}}, driver: buildx.DriverRemote, name: buildx.RemoteName, load: false, why: "linux/arm64 → "},
		},
		{
			name: "only per-platform nodes: the host's platform first",
			spec: func() Spec {
				s := baseSpec(config.BuilderRemote)
				s.Remote.Endpoints = nil
				s.Remote.Platforms = []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{epArm}}, {Platform: "linux/amd64", Endpoints: []string{epC}}}
				return s
			},
			results: results([]string{epArm, epC}, nil),
			want: &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{epC, epArm},
				platforms: [][]string{{"linux/amd64"}, {"linux/arm64"}}, driver: buildx.DriverRemote, name: buildx.RemoteName},
		},
		{
			name: "a platform without a healthy node is left out and named",
			spec: func() Spec {
				s := baseSpec(config.BuilderRemote)
				s.Remote.Platforms = []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{epArm}}}
				return s
			},
			results: results([]string{epA, epB}, map[string]string{epArm: "connection refused"}),
			want: &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{appNode}, platforms: [][]string{nil},
				driver: buildx.DriverRemote, name: buildx.RemoteName, why: "no healthy node for linux/arm64"},
		},
		{
			name:    "everything down",
			spec:    func() Spec { return baseSpec(config.BuilderRemote, config.BuilderLocal, config.BuilderEmbedded) },
			results: results(nil, map[string]string{epA: "connection refused", epB: "TLS: bad certificate", docker: "no socket", embSock: "no socket"}),
			want:    &want{kind: config.BuilderEmbedded, state: NeedsStart, endpoints: []string{embSock}, driver: buildx.DriverRemote, name: buildx.EmbeddedName},
			states:  []State{Down, Down, NeedsStart},
		},
		{
			name:    "an endpoint that was not probed counts as down",
			spec:    func() Spec { return baseSpec(config.BuilderRemote) },
			results: results([]string{epA}, nil),
			want:    &want{kind: config.BuilderRemote, state: Ready, endpoints: []string{epA}, driver: buildx.DriverRemote, name: buildx.RemoteName},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Plan(tc.spec(), tc.results)
			if tc.states != nil {
				var got []State
				for _, o := range opts {
					got = append(got, o.State)
				}
				if !slices.Equal(got, tc.states) {
					t.Errorf("states = %v, want %v", got, tc.states)
				}
			}
			i := FirstUsable(opts)
			o, ok := Option{}, i >= 0
			if ok {
				o = opts[i]
			}
			if tc.want == nil {
				if ok {
					t.Fatalf("usable option %+v, want none", o)
				}
				return
			}
			if !ok {
				t.Fatalf("nothing usable in %+v", opts)
			}
			w := tc.want
			if o.Kind != w.kind || o.State != w.state {
				t.Fatalf("first = %s %s (%s), want %s %s", o.Kind, o.State, o.Why, w.kind, w.state)
			}
			if w.why != "" && !strings.Contains(o.Why, w.why) {
				t.Errorf("why = %q, want it to contain %q", o.Why, w.why)
			}
			if o.State == NeedsSetup {
				return
			}
			if got := o.Builder.Endpoints(); !slices.Equal(got, w.endpoints) {
				t.Errorf("endpoints = %q, want %q", got, w.endpoints)
			}
			if w.platforms != nil {
				for i, n := range o.Builder.Nodes {
					if !slices.Equal(n.Platforms, w.platforms[i]) {
						t.Errorf("node %d platforms = %q, want %q", i, n.Platforms, w.platforms[i])
					}
				}
			}
			if o.Builder.Driver != w.driver || o.Builder.Name != w.name || o.Builder.DefaultLoad != w.load {
				t.Errorf("builder = %s %s load=%v, want %s %s load=%v", o.Builder.Name, o.Builder.Driver, o.Builder.DefaultLoad, w.name, w.driver, w.load)
			}
			if o.Kind == config.BuilderRemote {
				for _, n := range o.Builder.Nodes {
					if n.TLS != tlsFiles {
						t.Errorf("node %s TLS = %+v", n.Name, n.TLS)
					}
				}
			}
		})
	}
}

func TestTargets(t *testing.T) {
	s := baseSpec(config.BuilderNamespace, config.BuilderRemote, config.BuilderLocal)
	s.Remote.Endpoints = []string{epA, "unix:///run/buildkit/buildkitd.sock"}
	s.Remote.Platforms = []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{epArm, epA}}}
	got := Targets(s)
	var eps []string
	for _, tg := range got {
		eps = append(eps, tg.Kind+" "+tg.Endpoint)
		if strings.HasPrefix(tg.Endpoint, "tcp://") != (tg.TLS == tlsFiles) {
			t.Errorf("%s: TLS %+v (TLS is for tcp:// only)", tg.Endpoint, tg.TLS)
		}
	}
	want := []string{"buildkit " + epA, "buildkit unix:///run/buildkit/buildkitd.sock", "buildkit " + epArm, "docker " + docker}
	if !slices.Equal(eps, want) {
		t.Errorf("targets = %q, want %q (each once; no embedded when not wanted)", eps, want)
	}
	s = baseSpec(config.BuilderEmbedded)
	s.Local.DockerHost = ""
	if got := Targets(s); len(got) != 1 || got[0].Endpoint != embSock {
		t.Errorf("embedded-only targets = %+v", got)
	}
}

func TestNoBuilderErrorNamesEachCandidate(t *testing.T) {
	s := baseSpec(config.BuilderNamespace, config.BuilderRemote, config.BuilderLocal, config.BuilderEmbedded)
	s.Namespace = NamespaceSpec{NSC: "/usr/bin/nsc", TenantID: "t"}
	s.Local.DockerHost = ""
	opts := Plan(s, results(nil, map[string]string{epA: "connection refused", epB: "no answer within 1.5s", embSock: "no socket"}))
	err := &NoBuilderError{Options: opts, Setup: map[string]string{
		config.BuilderNamespace: "nsc auth exchange-oidc-token: permission denied",
		config.BuilderEmbedded:  "starting buildkitd: must be root",
	}}
	want := "no builder available: namespace: nsc auth exchange-oidc-token: permission denied; remote: " +
		epA + ": connection refused, " + epB + ": no answer within 1.5s; embedded: starting buildkitd: must be root"
	if err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Error("the error is more than one line")
	}
	if !Configured(opts) || Configured(Plan(Spec{Order: []string{config.BuilderLocal, config.BuilderRemote}}, nil)) {
		t.Error("Configured is wrong")
	}
}

func TestLoadable(t *testing.T) {
	one := func(p ...string) buildx.Node { return buildx.Node{Name: "n", Endpoint: epA, Platforms: p} }
	for _, tc := range []struct {
		nodes []buildx.Node
		want  bool
	}{
		{[]buildx.Node{one()}, true},
		{[]buildx.Node{one("linux/amd64"), one("linux/arm64")}, true},
		{[]buildx.Node{one(), one("linux/arm64")}, false}, // the first may build several platforms
		{[]buildx.Node{one("linux/amd64", "linux/386"), one("linux/arm64")}, false},
		{nil, false},
	} {
		if got := buildx.Loadable(tc.nodes); got != tc.want {
			t.Errorf("Loadable(%+v) = %v, want %v", tc.nodes, got, tc.want)
		}
	}
}

func TestInstanceJSON(t *testing.T) {
	b := buildx.Builder{Kind: config.BuilderRemote, Name: buildx.RemoteName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{
		{Name: "dockhand-remote0", Endpoint: epA, TLS: buildx.TLS{CA: "/ca.pem", Cert: "/c.pem", Key: "/k.pem", ServerName: "buildkitd"}},
		{Name: "dockhand-remote-linux-arm64-v8", Endpoint: epArm, Platforms: []string{"linux/arm64/v8"}, TLS: buildx.TLS{CA: "/ca.pem"}},
	}}
	data, err := buildx.InstanceJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Name":"dockhand-remote","Driver":"remote","Nodes":[` +
		`{"Name":"dockhand-remote0","Endpoint":"tcp://10.0.1.5:1234","Platforms":null,"DriverOpts":{"cacert":"/ca.pem","cert":"/c.pem","key":"/k.pem","servername":"buildkitd"},"Flags":null,"Files":null},` +
		`{"Name":"dockhand-remote-linux-arm64-v8","Endpoint":"tcp://10.0.2.5:1234","Platforms":[{"architecture":"arm64","os":"linux","variant":"v8"}],"DriverOpts":{"cacert":"/ca.pem"},"Flags":null,"Files":null}],"Dynamic":false}`
	if string(data) != want {
		t.Errorf("instance =\n%s\nwant\n%s", data, want)
	}
	// default-load on every node when asked; unix endpoints get no TLS.
	single := buildx.Builder{Kind: config.BuilderEmbedded, Name: buildx.EmbeddedName, Driver: buildx.DriverRemote, DefaultLoad: true,
		Nodes: []buildx.Node{{Name: "n0", Endpoint: embSock, TLS: buildx.TLS{CA: "/ca.pem"}}}}
	data, _ = buildx.InstanceJSON(single)
	var ng map[string]any
	json.Unmarshal(data, &ng)
	opts := ng["Nodes"].([]any)[0].(map[string]any)["DriverOpts"].(map[string]any)
	if len(opts) != 1 || opts["default-load"] != "true" {
		t.Errorf("single unix node driver opts = %v, want only default-load", opts)
	}
	back, err := buildx.ParseInstance(config.BuilderRemote, mustJSON(t, b))
	if err != nil || back.Name != b.Name || !slices.Equal(back.Endpoints(), b.Endpoints()) || back.Nodes[0].TLS != b.Nodes[0].TLS ||
		!slices.Equal(back.Nodes[1].Platforms, []string{"linux/arm64/v8"}) {
		t.Errorf("ParseInstance round trip = %+v, %v", back, err)
	}
	for _, bad := range []buildx.Builder{
		{Name: "1bad", Driver: buildx.DriverRemote, Nodes: b.Nodes},
		{Name: "ok", Driver: buildx.DriverDocker, Nodes: b.Nodes},
		{Name: "ok", Driver: buildx.DriverRemote},
		{Name: "ok", Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: "n", Endpoint: epA, TLS: buildx.TLS{CA: "relative/ca.pem"}}}},
		{Name: "ok", Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: "n", Endpoint: epA, Platforms: []string{"arm64"}}}},
	} {
		if _, err := buildx.InstanceJSON(bad); err == nil {
			t.Errorf("InstanceJSON(%+v) accepted", bad)
		}
	}
}

func mustJSON(t *testing.T, b buildx.Builder) []byte {
	t.Helper()
	data, err := buildx.InstanceJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// An engine socket the agent user may not use: local is down and says why
// and how to fix it in its one line; the next kind is ready.
func TestPlanLocalSocketDenied(t *testing.T) {
	denied := cloud.SocketDenied + "uid 2000 may not use the socket /run/docker.sock (mode 0660, group docker; this process is not in that group): add the agent user to group docker"
	opts := Plan(baseSpec(config.BuilderLocal, config.BuilderRemote), results([]string{epA, epB}, map[string]string{docker: denied}))
	if len(opts) != 2 || opts[0].State != Down || opts[1].State != Ready {
		t.Fatalf("Plan = %+v, want local down and remote ready", opts)
	}
	want := "builder: not local: this user may not use the docker daemon's socket (" + docker + ": " + denied + ")"
	if got := opts[0].WhyNot(); got != want {
		t.Errorf("WhyNot = %q, want %q", got, want)
	}
}

// The probe's line does not repeat the denied socket's cause and fix.
func TestProbeSummarySocketDenied(t *testing.T) {
	r := cloud.ProbeResult{Kind: cloud.ProbeDocker, Error: cloud.SocketDenied + "uid 2000 may not use the socket /run/docker.sock: add the agent user to group docker", Latency: 300_000}
	if got, want := r.Summary(), "down after 300µs: permission denied"; got != want {
		t.Errorf("Summary = %q, want %q", got, want)
	}
}

// TestPlanRoutesByLoad: the plan takes the probes' loads (active builds,
// plus the jobs this host routed since) into the pipeline's route, says so,
// and routes a node whose load is unknown as if load were not counted.
func TestPlanRoutesByLoad(t *testing.T) {
	appNode := Rendezvous("app", []string{epA, epB})[0]
	otherNode := map[string]string{epA: epB, epB: epA}[appNode]
	withLoad := func(active map[string]int, routed map[string]int, loadErr map[string]string) Results {
		rs := results([]string{epA, epB}, nil)
		for k, r := range rs {
			r.Active, r.Routed, r.LoadError = active[r.Endpoint], routed[r.Endpoint], loadErr[r.Endpoint]
			rs[k] = r
		}
		return rs
	}
	spec := baseSpec(config.BuilderRemote)
	for _, tc := range []struct {
		name    string
		factor  int
		results Results
		want    string
		why     string
	}{
		{"idle: its node", 125, withLoad(nil, nil, nil), appNode, "builds " + appNode + " 0, " + otherNode + " 0; bound 1)"},
		// (2+1)/2 × 1.25 → 2: its node with 2 is full.
		{"its node busy: the other", 125, withLoad(map[string]int{appNode: 2}, nil, nil), otherNode, "; its node over it, spilled)"},
		{"routed by this host count", 125, withLoad(map[string]int{appNode: 1}, map[string]int{appNode: 1}, nil), otherNode, "builds " + appNode + " 2, "},
		{"affinity only", 0, withLoad(map[string]int{appNode: 5}, nil, nil), appNode, "(rendezvous over 2 of 2 healthy)"},
		{"its node's history fails: kept", 125, withLoad(map[string]int{appNode: 7}, nil, map[string]string{appNode: "unknown service moby.buildkit.v1.Control"}), appNode, appNode + " unknown"},
	} {
		s := spec
		s.Remote.BalanceFactor = tc.factor
		o := Plan(s, tc.results)[0]
		if o.State != Ready || o.Builder.Nodes[0].Endpoint != tc.want {
			t.Errorf("%s: %v %+v, want %s", tc.name, o.State, o.Builder.Nodes, tc.want)
			continue
		}
		if !strings.Contains(o.Why, tc.why) {
			t.Errorf("%s: why %q, want it to hold %q", tc.name, o.Why, tc.why)
		}
	}
}

// A one-node pool builder knows where a lost build runs again: the
// pipeline's other healthy nodes in its rendezvous order; a per-platform
// builder has none.
func TestPlanRemoteFallbacks(t *testing.T) {
	eps := []string{"tcp://10.0.0.1:1234", "tcp://10.0.0.2:1234", "tcp://10.0.0.3:1234", "tcp://10.0.0.4:1234"}
	spec := Spec{Order: []string{config.BuilderRemote}, Slug: "app", Remote: RemoteSpec{Endpoints: eps, TLS: tlsFiles}}
	o := Plan(spec, results(eps[:3], map[string]string{eps[3]: "connection refused"}))[0]
	want := slices.DeleteFunc(Rendezvous("app", eps[:3]), func(e string) bool { return e == o.Builder.Endpoint() })
	if o.State != Ready || !slices.Equal(o.Fallbacks, want) || len(want) != 2 {
		t.Errorf("fallbacks %q, want %q (the healthy others in rendezvous order)", o.Fallbacks, want)
	}
	sel := &Selection{Survey: Survey{Spec: spec, Options: []Option{o}}, Chosen: 0, Builder: &o.Builder}
	cfg := &config.Config{}
	cfg.Remote.RetryLostBuilds = true
	if p := NewRetryPlan(sel, cfg, "/state/builders"); p == nil || p.Endpoint != o.Builder.Endpoint() || !slices.Equal(p.Fallbacks, want) || !p.On || p.TLS != tlsFiles {
		t.Errorf("retry plan %+v", p)
	}
	spec.Remote.Platforms = []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{"tcp://10.0.1.1:1234"}}}
	o = Plan(spec, results(append(slices.Clone(eps[:3]), "tcp://10.0.1.1:1234"), nil))[0]
	if len(o.Builder.Nodes) != 2 || o.Fallbacks != nil {
		t.Errorf("a two-node builder: %d nodes, fallbacks %q, want none", len(o.Builder.Nodes), o.Fallbacks)
	}
}
