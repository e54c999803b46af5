package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	agentenv "github.com/buildkite/agent/v3/env"
	"github.com/dockhand-ci/dockhand/buildx"
	"github.com/dockhand-ci/dockhand/config"
	"github.com/dockhand-ci/dockhand/internal/jsonfile"
	"github.com/dockhand-ci/dockhand/internal/proc"
)

func TestBuilderExports(t *testing.T) {
	remote := buildx.Builder{Kind: config.BuilderRemote, Name: buildx.RemoteName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{
		{Name: "n0", Endpoint: epA, TLS: buildx.TLS{CA: "/ca.pem", Cert: "/c.pem", Key: "/k.pem", ServerName: "buildkitd.internal"}},
		{Name: "n1", Endpoint: epArm, TLS: buildx.TLS{CA: "/ca.pem"}},
	}}
	for _, tc := range []struct {
		name string
		b    buildx.Builder
		want map[string]string
	}{
		{"remote with mTLS", remote, map[string]string{
			HostVar: epA, TLSDirVar: "/job/buildkit-tls", TLSServerName: "buildkitd.internal"}},
		{"embedded on a unix socket", buildx.Builder{Kind: config.BuilderEmbedded, Name: buildx.EmbeddedName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: "e0", Endpoint: embSock}}},
			map[string]string{HostVar: embSock}},
		{"local docker driver: nothing exported, as without dockhand", buildx.Builder{Kind: config.BuilderLocal, Name: "default", Driver: buildx.DriverDocker, Nodes: []buildx.Node{{Name: "default", Endpoint: docker}}},
			map[string]string{}},
		{"namespace: no NSC_TOKEN_FILE, which would shadow a step's own nsc login", buildx.Builder{Kind: config.BuilderNamespace, Name: buildx.NamespaceName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: "amd64", Endpoint: epC, TLS: buildx.TLS{CA: "/s.pem", Cert: "/ck.pem", Key: "/ck.pem"}}}},
			map[string]string{HostVar: epC, TLSDirVar: "/job/buildkit-tls"}},
	} {
		got := builderExports(tc.b, "/job")
		if len(got) != len(tc.want) {
			t.Errorf("%s: exports %v, want %v", tc.name, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", tc.name, k, got[k], v)
			}
		}
	}
}

func TestWireBuilder(t *testing.T) {
	job := t.TempDir()
	dc := filepath.Join(job, "docker")
	o := SetupOptions{JobDir: job, DockerConfig: dc}
	b := buildx.Builder{Kind: config.BuilderRemote, Name: buildx.RemoteName, Driver: buildx.DriverRemote, DefaultLoad: true,
		Nodes: []buildx.Node{{Name: "n0", Endpoint: epA, TLS: buildx.TLS{CA: "/etc/ca.pem", Cert: "/etc/c.pem", Key: "/etc/k.pem"}}}}
	if err := wireBuilder(t.Context(), o, b); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(buildx.InstancePath(dc, buildx.RemoteName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("instance file: %v %v", err, fi)
	}
	back, err := buildx.ReadInstance(dc, config.BuilderRemote, buildx.RemoteName)
	if err != nil || back.Endpoint() != epA || !back.DefaultLoad || back.Nodes[0].TLS != b.Nodes[0].TLS {
		t.Errorf("instance read back = %+v, %v", back, err)
	}
	for name, target := range map[string]string{"ca.pem": "/etc/ca.pem", "cert.pem": "/etc/c.pem", "key.pem": "/etc/k.pem"} {
		if got, err := os.Readlink(filepath.Join(job, "buildkit-tls", name)); err != nil || got != target {
			t.Errorf("buildkit-tls/%s -> %q, %v; want %s", name, got, err, target)
		}
	}
	// dockhand's builder is the store's current one, for any docker
	// endpoint; BUILDX_BUILDER is not needed.
	for _, host := range []string{"", "tcp://10.9.9.9:2375"} {
		if got := buildx.SelectedBuilderName(proc.LookupIn([]string{"DOCKER_CONFIG=" + dc, "DOCKER_HOST=" + host})); got != buildx.RemoteName {
			t.Errorf("DOCKER_HOST=%q: buildx would run on %q, want %s", host, got, buildx.RemoteName)
		}
	}
	data, _ := os.ReadFile(buildx.InstancePath(dc, buildx.RemoteName))
	if strings.Contains(string(data), "PRIVATE KEY") {
		t.Error("key material in the instance file")
	}
	// The docker driver has no instance; nsc's instance is left as nsc wrote it.
	if err := wireBuilder(t.Context(), o, buildx.Builder{Kind: config.BuilderLocal, Name: "default", Driver: buildx.DriverDocker, Nodes: []buildx.Node{{Name: "default", Endpoint: docker}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(buildx.InstancePath(dc, "default")); !os.IsNotExist(err) {
		t.Errorf("an instance file for the docker driver: %v", err)
	}
	nsData := []byte(`{"Name":"dockhand-namespace","Driver":"remote","Nodes":[{"Name":"amd64","Endpoint":"tcp://x:443","Platforms":null,"DriverOpts":{"default-load":"false"},"Flags":null,"Files":null}],"Dynamic":false}`)
	os.WriteFile(buildx.InstancePath(dc, buildx.NamespaceName), nsData, 0o600)
	if err := wireBuilder(t.Context(), o, buildx.Builder{Kind: config.BuilderNamespace, Name: buildx.NamespaceName, Driver: buildx.DriverRemote, Nodes: []buildx.Node{{Name: "amd64", Endpoint: "tcp://x:443"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(buildx.InstancePath(dc, buildx.NamespaceName)); string(got) != string(nsData) {
		t.Errorf("nsc's instance was rewritten: %s", got)
	}
}

// jobDirs makes a state dir with a job dir (and its docker config) in it.
func jobDirs(t *testing.T) (state, job string) {
	state = t.TempDir()
	job = filepath.Join(state, "jobs", "j")
	os.MkdirAll(filepath.Join(job, "docker"), 0o700)
	return state, job
}

func TestSelect(t *testing.T) {
	state, job := jobDirs(t)
	e := agentenv.FromSlice([]string{"PATH=" + t.TempDir(), "BUILDKITE_PIPELINE_SLUG=app"})
	self := filepath.Join(t.TempDir(), "dockhand") // no dockhand-cloud beside it
	opts := func(cfg *config.Config) SetupOptions {
		return SetupOptions{Config: cfg, Env: e, StateDir: state, JobDir: job, DockerConfig: filepath.Join(job, "docker"),
			Self: self, DockerSocket: filepath.Join(state, "no-docker.sock")}
	}

	// Nothing configured: no builder, no error, nothing probed.
	sel, err := Select(t.Context(), opts(config.Default("")))
	if err != nil || sel.Builder != nil || len(sel.Targets) != 0 {
		t.Errorf("nothing configured: %+v, %v", sel, err)
	}

	// Endpoints that cannot be probed (dockhand-cloud is missing): every
	// candidate is named with why.
	cfg := config.Default("")
	cfg.Builders = []string{config.BuilderRemote}
	cfg.Remote.Endpoints = []string{epA, epB}
	sel, err = Select(t.Context(), opts(cfg))
	var none *NoBuilderError
	if !errors.As(err, &none) || sel.Builder != nil {
		t.Fatalf("all down: %+v, %v", sel, err)
	}
	for _, ep := range []string{epA, epB} {
		if !strings.Contains(err.Error(), ep+": probe failed: ") || !strings.Contains(err.Error(), "not found (it is installed next to dockhand)") {
			t.Errorf("error does not say why %s is down: %v", ep, err)
		}
	}

	// The embedded kind with no buildkitd anywhere is down, with the reason.
	cfg.Builders = []string{config.BuilderEmbedded}
	_, err = Select(t.Context(), opts(cfg))
	if !errors.As(err, &none) || !strings.Contains(err.Error(), "embedded: ") {
		t.Errorf("embedded without buildkitd: %v", err)
	}
}

func TestOnlyEngineDown(t *testing.T) {
	opt := func(kind string, s State) Option { return Option{Kind: kind, State: s} }
	for _, tc := range []struct {
		opts []Option
		want bool
	}{
		{[]Option{opt(config.BuilderNamespace, NotConfigured), opt(config.BuilderRemote, NotConfigured), opt(config.BuilderLocal, Down)}, true},
		{[]Option{opt(config.BuilderRemote, Down), opt(config.BuilderLocal, Down)}, false}, // a configured pool is down: 125
		{[]Option{opt(config.BuilderLocal, NotConfigured)}, false},
		{[]Option{opt(config.BuilderLocal, Down), opt(config.BuilderEmbedded, Down)}, false},
	} {
		if got := onlyEngineDown(tc.opts); got != tc.want {
			t.Errorf("onlyEngineDown(%v) = %v, want %v", tc.opts, got, tc.want)
		}
	}
}

// TestForksGoWhereUntrustedSays: a pull request from a fork never gets the
// trusted builders: none, the untrusted pool, or the embedded builder, as
// [untrusted] says; a pull request from the pipeline's own repository, or a
// branch build, gets the trusted pool.
func TestForksGoWhereUntrustedSays(t *testing.T) {
	cfg := config.Default("")
	cfg.Builders = []string{config.BuilderRemote, config.BuilderLocal}
	cfg.Remote.Endpoints = []string{epA, epB}
	cfg.Remote.Platforms = []config.PlatformNodes{{Platform: "linux/arm64", Endpoints: []string{epArm}}}
	cfg.Remote.CA = "/ca.pem"
	base := []string{"PATH=/nowhere", "BUILDKITE_PIPELINE_SLUG=app", "BUILDKITE_REPO=git@github.com:org/app.git"}
	fork := append(slices.Clone(base), "BUILDKITE_PULL_REQUEST=7", "BUILDKITE_PULL_REQUEST_REPO=https://github.com/Mallory/app")
	own := append(slices.Clone(base), "BUILDKITE_PULL_REQUEST=8", "BUILDKITE_PULL_REQUEST_REPO=https://github.com/org/app")
	spec := func(vars []string, u config.Untrusted) Spec {
		c := *cfg
		c.Untrusted = u
		return SpecFor(&c, agentenv.FromSlice(vars), "/state", "/nowhere.sock")
	}
	for _, tc := range []struct {
		name      string
		vars      []string
		u         config.Untrusted
		order     []string
		endpoints []string
		platforms int
		untrusted bool
	}{
		{"branch build: trusted pool", base, config.Untrusted{Builder: config.UntrustedNone}, cfg.Builders, cfg.Remote.Endpoints, 1, false},
		{"own pull request: trusted pool", own, config.Untrusted{Builder: config.UntrustedNone}, cfg.Builders, cfg.Remote.Endpoints, 1, false},
		{"fork, default: no builder", fork, config.Default("").Untrusted, nil, nil, 0, true},
		{"fork: the untrusted pool only", fork, config.Untrusted{Builder: config.BuilderRemote, Endpoints: []string{epC}}, []string{config.BuilderRemote}, []string{epC}, 0, true},
		{"fork: the embedded builder", fork, config.Untrusted{Builder: config.BuilderEmbedded}, []string{config.BuilderEmbedded}, nil, 0, true},
	} {
		s := spec(tc.vars, tc.u)
		if !slices.Equal(s.Order, tc.order) || !slices.Equal(s.Remote.Endpoints, tc.endpoints) || len(s.Remote.Platforms) != tc.platforms {
			t.Errorf("%s: order %q, endpoints %q, %d platforms; want %q, %q, %d", tc.name, s.Order, s.Remote.Endpoints, len(s.Remote.Platforms), tc.order, tc.endpoints, tc.platforms)
		}
		if (s.Untrusted != "") != tc.untrusted {
			t.Errorf("%s: Untrusted = %q", tc.name, s.Untrusted)
		}
		if tc.untrusted && !strings.Contains(s.Untrusted, "github.com/mallory/app") {
			t.Errorf("%s: the line does not name the fork: %q", tc.name, s.Untrusted)
		}
		if tc.untrusted && s.Remote.TLS.CA != "/ca.pem" {
			t.Errorf("%s: the untrusted pool lost the TLS settings: %+v", tc.name, s.Remote.TLS)
		}
		// Whatever it is, no probe of a fork's job reaches a trusted node.
		for _, tg := range Targets(s) {
			if tc.untrusted && slices.Contains([]string{epA, epB, epArm}, tg.Endpoint) {
				t.Errorf("%s: probes trusted node %s", tc.name, tg.Endpoint)
			}
		}
	}
}

// A job cancelled during its builder choice stops waiting at once: here
// another job holds both the fleet's and the probes' shared caches, which
// before the job waited for until probe_timeout had passed.
func TestCancelEndsSelect(t *testing.T) {
	state, job := jobDirs(t)
	cfg := config.Default("")
	cfg.Builders = []string{config.BuilderRemote}
	cfg.Remote.Endpoints = []string{epA, "dns://pool.fleet.test:1234"}
	cfg.ProbeTimeout, cfg.ProbeCacheTTL, cfg.Remote.DiscoveryTTL = time.Hour, time.Hour, time.Hour
	// "fleet.lock" is fleet.Discoverer's lock beside its cache.
	for _, lock := range []string{"fleet.lock", probeLockFile} {
		release, err := jsonfile.Lock(t.Context(), filepath.Join(ProbeCacheDir(state), lock), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer release()
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the agent's cancel came in
	type result struct {
		sel *Selection
		err error
	}
	done := make(chan result, 1)
	go func() {
		sel, err := Select(ctx, SetupOptions{Config: cfg, Env: agentenv.FromSlice([]string{"PATH=" + t.TempDir()}), StateDir: state, JobDir: job,
			DockerConfig: filepath.Join(job, "docker"), Self: filepath.Join(t.TempDir(), "dockhand"), DockerSocket: filepath.Join(state, "no-docker.sock")})
		done <- result{sel, err}
	}()
	select {
	case r := <-done:
		var none *NoBuilderError
		if !errors.As(r.err, &none) || r.sel.Builder != nil {
			t.Errorf("cancelled choice: %+v, %v; want no builder", r.sel, r.err)
		}
		if !strings.Contains(r.sel.Probes.Note, "canceled") {
			t.Errorf("probe note %q, want the wait for the cache cancelled", r.sel.Probes.Note)
		}
		if len(r.sel.Discovery) != 1 || !strings.Contains(r.sel.Discovery[0].Err, "cancelled") {
			t.Errorf("discovery %+v, want it cancelled", r.sel.Discovery)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a cancelled job still waits to choose its builder")
	}
}
